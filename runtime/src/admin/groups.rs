//! Ferrule's groups and permissions as admin models, changed through [`Auth`]: a group's
//! permissions granted and taken back, permissions made and deleted. Names are not renamed: a
//! permission's code is what the app's guards name.

use std::collections::BTreeSet;

use sea_orm::{ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter};

use super::fields::{change, field, joined, names, only};
use super::options::ModelAdmin;
use super::values::REQUIRED;
use super::{
    AdminModel, Change, EntityAdmin, FieldKind, FieldView, ListPage, ListQuery, Saved, Values,
};
use crate::Error;
use crate::auth::{Auth, AuthError};
use crate::db::entities::{group, permission};
use crate::forms::FieldErrors;

/// An account error about `name`'s value, as that field's message.
fn under(field: &str, e: AuthError) -> Error {
    match e {
        AuthError::Invalid(m) => FieldErrors::new().with(field, m).into(),
        other => other.into(),
    }
}

/// Not found, for row `id` of `label`.
fn missing(label: &str, id: &str) -> Error {
    Error::NotFound(format!("No row `{id}` in {label}."))
}

/// `ferrule_groups`: a name and the permissions the group grants.
pub(super) struct Groups {
    auth: Auth,
    rows: EntityAdmin<group::Entity>,
}

impl Groups {
    pub(super) fn new(auth: Auth) -> Self {
        let options = ModelAdmin::new()
            .label("groups")
            .list_columns(["name"])
            .search_fields(["name"])
            .ordering("name")
            .read_only(["name"]);
        Self {
            auth,
            rows: EntityAdmin::new(options),
        }
    }

    async fn name(&self, id: &str) -> Result<String, Error> {
        let key: i64 = id.trim().parse().map_err(|_| missing("groups", id))?;
        Ok(group::Entity::find_by_id(key)
            .one(self.auth.db())
            .await?
            .ok_or_else(|| missing("groups", id))?
            .name)
    }
}

#[async_trait::async_trait]
impl AdminModel for Groups {
    fn table(&self) -> &str {
        "ferrule_groups"
    }

    fn label(&self) -> &str {
        "groups"
    }

    fn fields(&self) -> Vec<FieldView> {
        vec![
            field("name", FieldKind::Text, false, None),
            field("permissions", FieldKind::Names, false, None),
        ]
    }

    async fn list(&self, db: &DatabaseConnection, query: &ListQuery) -> Result<ListPage, Error> {
        self.rows.list(db, query).await
    }

    async fn open(&self, db: &DatabaseConnection, id: &str) -> Result<Vec<FieldView>, Error> {
        let mut fields = self.rows.open(db, id).await?;
        let name = self.name(id).await?;
        let granted = self.auth.group_permissions(&name).await?;
        fields.push(field(
            "permissions",
            FieldKind::Names,
            false,
            joined(&granted),
        ));
        Ok(fields)
    }

    async fn save(
        &self,
        _: &DatabaseTransaction,
        id: Option<&str>,
        values: &Values,
    ) -> Result<Saved, Error> {
        let mut errors = FieldErrors::new();
        let shown = ["id", "name", "permissions"];
        let writable: &[&str] = match id {
            None => &["name", "permissions"],
            Some(_) => &["permissions"],
        };
        only(values, writable, &shown, &mut errors);
        let name = match id {
            Some(id) => self.name(id).await?,
            None => values
                .get("name")
                .map(|n| n.trim().to_owned())
                .unwrap_or_default(),
        };
        if name.is_empty() {
            errors.add("name", REQUIRED);
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let mut changes = Vec::new();
        let had: BTreeSet<String> = match id {
            Some(_) => self
                .auth
                .group_permissions(&name)
                .await?
                .into_iter()
                .collect(),
            None => {
                self.auth
                    .create_group(&name)
                    .await
                    .map_err(|e| under("name", e))?;
                change(&mut changes, "name", None, Some(name.clone()));
                BTreeSet::new()
            }
        };
        if let Some(text) = values.get("permissions") {
            let wanted = names(text);
            for code in wanted.difference(&had) {
                self.auth.grant_group(&name, code).await?;
            }
            for code in had.difference(&wanted) {
                self.auth.revoke_group(&name, code).await?;
            }
            change(&mut changes, "permissions", joined(&had), joined(&wanted));
        }
        let key = group::Entity::find()
            .filter(group::Column::Name.eq(name.as_str()))
            .one(self.auth.db())
            .await?
            .map(|g| g.id.to_string())
            .unwrap_or_default();
        Ok(Saved {
            id: key,
            changes,
            created: id.is_none(),
        })
    }

    async fn delete(
        &self,
        _: &DatabaseTransaction,
        id: &str,
    ) -> Result<(String, Vec<Change>), Error> {
        let key: i64 = id.trim().parse().map_err(|_| missing("groups", id))?;
        let name = self.name(id).await?;
        let granted = self.auth.group_permissions(&name).await?;
        self.auth.delete_group(&name).await?;
        let mut held = Vec::new();
        change(&mut held, "name", Some(name), None);
        change(&mut held, "permissions", joined(&granted), None);
        Ok((key.to_string(), held))
    }
}

/// `ferrule_permissions`: the codes guards name, made here so they can be granted from lists.
pub(super) struct Permissions {
    auth: Auth,
    rows: EntityAdmin<permission::Entity>,
}

impl Permissions {
    pub(super) fn new(auth: Auth) -> Self {
        let options = ModelAdmin::new()
            .label("permissions")
            .list_columns(["codename"])
            .search_fields(["codename"])
            .ordering("codename")
            .read_only(["codename"]);
        Self {
            auth,
            rows: EntityAdmin::new(options),
        }
    }
}

#[async_trait::async_trait]
impl AdminModel for Permissions {
    fn table(&self) -> &str {
        "ferrule_permissions"
    }

    fn label(&self) -> &str {
        "permissions"
    }

    fn fields(&self) -> Vec<FieldView> {
        vec![field("codename", FieldKind::Text, false, None)]
    }

    async fn list(&self, db: &DatabaseConnection, query: &ListQuery) -> Result<ListPage, Error> {
        self.rows.list(db, query).await
    }

    async fn open(&self, db: &DatabaseConnection, id: &str) -> Result<Vec<FieldView>, Error> {
        self.rows.open(db, id).await
    }

    async fn save(
        &self,
        _: &DatabaseTransaction,
        id: Option<&str>,
        values: &Values,
    ) -> Result<Saved, Error> {
        let mut errors = FieldErrors::new();
        let writable: &[&str] = if id.is_some() { &[] } else { &["codename"] };
        only(values, writable, &["id", "codename"], &mut errors);
        if let Some(id) = id {
            // Nothing of a permission changes: its code is what guards name.
            self.rows.open(self.auth.db(), id).await?;
            return match errors.is_empty() {
                true => Ok(Saved {
                    id: id.to_owned(),
                    changes: Vec::new(),
                    created: false,
                }),
                false => Err(Error::Invalid(errors)),
            };
        }
        let code = values.get("codename").map(|c| c.trim()).unwrap_or("");
        if code.is_empty() {
            errors.add("codename", REQUIRED);
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        self.auth
            .create_permission(code)
            .await
            .map_err(|e| under("codename", e))?;
        let key = permission::Entity::find()
            .filter(permission::Column::Codename.eq(code))
            .one(self.auth.db())
            .await?
            .map(|p| p.id.to_string())
            .unwrap_or_default();
        let mut changes = Vec::new();
        change(&mut changes, "codename", None, Some(code.to_owned()));
        Ok(Saved {
            id: key,
            changes,
            created: true,
        })
    }

    async fn delete(
        &self,
        _: &DatabaseTransaction,
        id: &str,
    ) -> Result<(String, Vec<Change>), Error> {
        let key: i64 = id.trim().parse().map_err(|_| missing("permissions", id))?;
        let row = permission::Entity::find_by_id(key)
            .one(self.auth.db())
            .await?
            .ok_or_else(|| missing("permissions", id))?;
        self.auth.delete_permission(&row.codename).await?;
        let mut held = Vec::new();
        change(&mut held, "codename", Some(row.codename), None);
        Ok((row.id.to_string(), held))
    }
}
