//! Ferrule's users as an admin model, changed through [`Auth`] only: a password is checked by
//! the password policy and hashed, flags and memberships drop the users kept for events, and
//! the hash is never shown. Lists and rows are read as any entity's ([`EntityAdmin`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use sea_orm::{DatabaseConnection, DatabaseTransaction, EntityTrait};

use super::fields::{change, field, joined, names, only};
use super::options::ModelAdmin;
use super::values::{REQUIRED, parse_bool};
use super::{
    AdminModel, Change, EntityAdmin, FieldKind, FieldView, ListPage, ListQuery, Saved, Values,
};
use crate::Error;
use crate::auth::{Auth, AuthError, NewUser, normalize_username};
use crate::db::entities::user;
use crate::forms::FieldErrors;

/// The account models of `auth`: users, groups, permissions.
pub(crate) fn models(auth: &Auth) -> Vec<Arc<dyn AdminModel>> {
    vec![
        Arc::new(Users::new(auth.clone())),
        Arc::new(super::groups::Groups::new(auth.clone())),
        Arc::new(super::groups::Permissions::new(auth.clone())),
    ]
}

/// What a password change shows in the log instead of any hash.
const PASSWORD_SET: &str = "(set)";

/// The columns of `ferrule_users` the admin shows; never the hash or its lookup key.
const SHOWN: &[&str] = &[
    "id",
    "username",
    "email",
    "is_active",
    "is_staff",
    "is_superuser",
    "date_joined",
    "last_login",
    "groups",
    "permissions",
    "password",
];
const FLAGS: [&str; 3] = ["is_active", "is_staff", "is_superuser"];
const WRITABLE: &[&str] = &[
    "password",
    "is_active",
    "is_staff",
    "is_superuser",
    "groups",
    "permissions",
];
const WRITABLE_NEW: &[&str] = &[
    "username",
    "email",
    "password",
    "is_active",
    "is_staff",
    "is_superuser",
    "groups",
    "permissions",
];

/// What a staff user who is no superuser is told when setting the superuser flag.
const SUPERUSERS_ONLY: &str = "Only a superuser may change this.";

/// Whether the user of the event being handled is a superuser.
fn acting_superuser() -> bool {
    crate::context::current_user()
        .user()
        .is_some_and(|u| u.is_superuser)
}

/// Refuses a change to a superuser's account by someone who is not one: holding
/// `ferrule_users.change` must not be a way to take over the accounts above it.
fn guard_superuser(row: &user::Model) -> Result<(), Error> {
    match row.is_superuser && !acting_superuser() {
        true => Err(Error::permission_denied(
            "Only a superuser may change a superuser's account.",
        )),
        false => Ok(()),
    }
}

/// `ferrule_users`.
struct Users {
    auth: Auth,
    rows: EntityAdmin<user::Entity>,
}

impl Users {
    fn new(auth: Auth) -> Self {
        let options = ModelAdmin::new()
            .label("users")
            .list_columns(["username", "email", "is_active", "is_staff", "is_superuser"])
            .search_fields(["username", "email"])
            .filters(FLAGS)
            .ordering("username_key");
        Self {
            auth,
            rows: EntityAdmin::new(options),
        }
    }

    async fn user(&self, id: &str) -> Result<user::Model, Error> {
        let missing = || Error::NotFound(format!("No row `{id}` in users."));
        let id: i64 = id.trim().parse().map_err(|_| missing())?;
        user::Entity::find_by_id(id)
            .one(self.auth.db())
            .await?
            .ok_or_else(missing)
    }

    /// The flags `values` sets, read; a bad one is its field's error.
    fn flags(values: &Values, errors: &mut FieldErrors) -> [Option<bool>; 3] {
        FLAGS.map(|name| match values.get(name).map(|v| parse_bool(v)) {
            Some(Ok(b)) => Some(b),
            Some(Err(message)) => {
                errors.add(name, message);
                None
            }
            None => None,
        })
    }

    async fn create(&self, values: &Values) -> Result<Saved, Error> {
        let mut errors = FieldErrors::new();
        only(values, WRITABLE_NEW, SHOWN, &mut errors);
        let flags = Self::flags(values, &mut errors);
        if flags[2] == Some(true) && !acting_superuser() {
            errors.add("is_superuser", SUPERUSERS_ONLY);
        }
        let text = |k: &str| values.get(k).map(|v| v.trim()).unwrap_or("");
        let username = normalize_username(text("username"));
        if let Err(e) = crate::auth::validate_username(&username) {
            errors.add("username", e.to_string());
        }
        let email = Some(text("email").to_owned()).filter(|e| !e.is_empty());
        let password = values.get("password").map(String::as_str).unwrap_or("");
        if password.is_empty() {
            errors.add("password", REQUIRED);
        } else if let Err(m) =
            crate::auth::password_policy::check(password, &username, email.as_deref())
        {
            errors.add("password", m);
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let [active, staff, superuser] = flags;
        let new = NewUser {
            username: username.clone(),
            email: email.clone(),
            password: password.to_owned(),
            is_staff: staff.unwrap_or(false),
            is_superuser: superuser.unwrap_or(false),
        };
        let made = self.auth.create_user(new).await.map_err(|e| match e {
            AuthError::UsernameTaken(_) => {
                FieldErrors::new().with("username", e.to_string()).into()
            }
            AuthError::EmailTaken(_) => FieldErrors::new().with("email", e.to_string()).into(),
            AuthError::Invalid(m) if m.contains("e-mail") => {
                FieldErrors::new().with("email", m).into()
            }
            other => Error::from(other),
        })?;
        if active == Some(false) {
            self.auth.set_active(&made.username, false).await?;
        }
        let groups = names(text("groups"));
        for group in &groups {
            self.auth.add_to_group(&made.username, group).await?;
        }
        let permissions = names(text("permissions"));
        for code in &permissions {
            self.auth.grant(&made.username, code).await?;
        }
        let mut changes = Vec::new();
        change(&mut changes, "username", None, Some(made.username.clone()));
        change(&mut changes, "email", None, email);
        change(
            &mut changes,
            "password",
            None,
            Some(PASSWORD_SET.to_owned()),
        );
        for (name, value) in
            FLAGS
                .into_iter()
                .zip([active.unwrap_or(true), made.is_staff, made.is_superuser])
        {
            change(&mut changes, name, None, Some(value.to_string()));
        }
        change(&mut changes, "groups", None, joined(&groups));
        change(&mut changes, "permissions", None, joined(&permissions));
        Ok(Saved {
            id: made.id.to_string(),
            changes,
            created: true,
        })
    }

    async fn update(&self, id: &str, values: &Values) -> Result<Saved, Error> {
        let row = self.user(id).await?;
        guard_superuser(&row)?;
        let mut errors = FieldErrors::new();
        only(values, WRITABLE, SHOWN, &mut errors);
        let flags = Self::flags(values, &mut errors);
        if flags[2].is_some_and(|s| s != row.is_superuser) && !acting_superuser() {
            errors.add("is_superuser", SUPERUSERS_ONLY);
        }
        let password = values.get("password").map(String::as_str).unwrap_or("");
        if !password.is_empty()
            && let Err(m) =
                crate::auth::password_policy::check(password, &row.username, row.email.as_deref())
        {
            errors.add("password", m);
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let name = row.username.as_str();
        let mut changes = Vec::new();
        let now = [row.is_active, row.is_staff, row.is_superuser];
        for ((field, wanted), was) in FLAGS.into_iter().zip(flags).zip(now) {
            let Some(wanted) = wanted.filter(|w| *w != was) else {
                continue;
            };
            match field {
                "is_active" => self.auth.set_active(name, wanted).await?,
                "is_staff" => self.auth.set_staff(name, wanted).await?,
                _ => self.auth.set_superuser(name, wanted).await?,
            }
            change(
                &mut changes,
                field,
                Some(was.to_string()),
                Some(wanted.to_string()),
            );
        }
        if let Some(text) = values.get("groups") {
            let had = self
                .auth
                .load(row.id)
                .await?
                .map(|u| u.groups)
                .unwrap_or_default();
            let wanted = names(text);
            for group in wanted.difference(&had) {
                self.auth.add_to_group(name, group).await?;
            }
            for group in had.difference(&wanted) {
                self.auth.remove_from_group(name, group).await?;
            }
            change(&mut changes, "groups", joined(&had), joined(&wanted));
        }
        if let Some(text) = values.get("permissions") {
            let had: BTreeSet<String> =
                self.auth.own_permissions(name).await?.into_iter().collect();
            let wanted = names(text);
            for code in wanted.difference(&had) {
                self.auth.grant(name, code).await?;
            }
            for code in had.difference(&wanted) {
                self.auth.revoke(name, code).await?;
            }
            change(&mut changes, "permissions", joined(&had), joined(&wanted));
        }
        if !password.is_empty() {
            self.auth.set_password(name, password).await?;
            change(
                &mut changes,
                "password",
                None,
                Some(PASSWORD_SET.to_owned()),
            );
        }
        Ok(Saved {
            id: row.id.to_string(),
            changes,
            created: false,
        })
    }
}

#[async_trait::async_trait]
impl AdminModel for Users {
    fn table(&self) -> &str {
        "ferrule_users"
    }

    fn label(&self) -> &str {
        "users"
    }

    fn fields(&self) -> Vec<FieldView> {
        let mut fields = vec![
            field("username", FieldKind::Text, false, None),
            field("email", FieldKind::Text, false, None),
            field("password", FieldKind::Password, false, None),
        ];
        fields.extend(FLAGS.map(|f| field(f, FieldKind::Bool, false, None)));
        fields.push(field("groups", FieldKind::Names, false, None));
        fields.push(field("permissions", FieldKind::Names, false, None));
        fields
    }

    async fn list(&self, db: &DatabaseConnection, query: &ListQuery) -> Result<ListPage, Error> {
        let mut page = self.rows.list(db, query).await?;
        page.model = self.table().to_owned();
        Ok(page)
    }

    async fn open(&self, db: &DatabaseConnection, id: &str) -> Result<Vec<FieldView>, Error> {
        let row = self.user(id).await?;
        let mut fields: Vec<FieldView> = self
            .rows
            .open(db, id)
            .await?
            .into_iter()
            .filter(|f| SHOWN.contains(&f.name.as_str()))
            .map(|f| FieldView {
                read_only: !FLAGS.contains(&f.name.as_str()),
                ..f
            })
            .collect();
        let groups = self
            .auth
            .load(row.id)
            .await?
            .map(|u| u.groups)
            .unwrap_or_default();
        let own = self.auth.own_permissions(&row.username).await?;
        fields.push(field("groups", FieldKind::Names, false, joined(&groups)));
        fields.push(field("permissions", FieldKind::Names, false, joined(&own)));
        fields.push(field("password", FieldKind::Password, false, None));
        Ok(fields)
    }

    async fn save(
        &self,
        _: &DatabaseTransaction,
        id: Option<&str>,
        values: &Values,
    ) -> Result<Saved, Error> {
        match id {
            None => self.create(values).await,
            Some(id) => self.update(id, values).await,
        }
    }

    async fn delete(
        &self,
        _: &DatabaseTransaction,
        id: &str,
    ) -> Result<(String, Vec<Change>), Error> {
        let row = self.user(id).await?;
        guard_superuser(&row)?;
        let groups = self
            .auth
            .load(row.id)
            .await?
            .map(|u| u.groups)
            .unwrap_or_default();
        self.auth.delete_user(&row.username).await?;
        let mut held = Vec::new();
        change(&mut held, "username", Some(row.username), None);
        change(&mut held, "email", row.email, None);
        for (name, value) in FLAGS
            .into_iter()
            .zip([row.is_active, row.is_staff, row.is_superuser])
        {
            change(&mut held, name, Some(value.to_string()), None);
        }
        change(&mut held, "groups", joined(&groups), None);
        Ok((row.id.to_string(), held))
    }
}
