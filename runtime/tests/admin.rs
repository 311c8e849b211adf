//! The admin end to end, through the real socket client on SQLite and PostgreSQL: staff with the
//! model's permissions create, edit, search, filter, order, page and delete rows and read their
//! log; without a permission, or without being staff, they are refused and nothing changes.

mod dbsupport;

use dbsupport::{Backend, TestDb};
use ferrule::admin::{AdminState, ListPage, ModelAdmin};
use ferrule::auth::{Auth, NewUser};
use ferrule::testing::{ClientOptions, TestClient, TestServer};
use ferrule::{App, EventContext, Handlers, State, StateUpdate};
use serde_json::{Value, json};

/// The test entity: one column of each kind a scaffold makes.
#[allow(unreachable_pub)]
mod book {
    use ferrule::db::sea_orm::{self, entity::prelude::*};

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "books")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub title: String,
        pub pages: i32,
        pub price: Option<f64>,
        pub in_print: bool,
        pub published: Option<TimeDate>,
        pub owner: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Rows per page: small, so the tests reach the page's limits.
const PAGE: u64 = 3;

const FORBIDDEN: &str = "You do not have permission to do this.";

struct Fixture {
    server: TestServer,
    db: TestDb,
    auth: Auth,
}

async fn fixture(backend: Backend) -> Option<Fixture> {
    fixture_with(backend, |app| app).await
}

/// [`fixture`] with more of the app: `more` adds to it before it starts.
async fn fixture_with(backend: Backend, more: impl FnOnce(App) -> App) -> Option<Fixture> {
    use ferrule::db::sea_orm_migration::schema::*;
    use ferrule::db::sea_orm_migration_prelude::{SchemaManager, Table};
    let db = TestDb::new(backend).await?;
    SchemaManager::new(&db.conn)
        .create_table(
            Table::create()
                .table("books")
                .col(big_pk_auto("id"))
                .col(string("title"))
                .col(integer("pages"))
                .col(double_null("price"))
                .col(boolean("in_print"))
                .col(date_null("published"))
                .col(string("owner").default(""))
                .to_owned(),
        )
        .await
        .unwrap();
    let app = more(App::new())
        .database(db.conn.clone())
        .admin_with::<book::Entity>(
            ModelAdmin::new()
                .list_columns(["title", "pages", "in_print"])
                .search_fields(["title"])
                .filters(["in_print", "published"])
                .ordering("title")
                .read_only(["owner"])
                .page_size(PAGE),
        );
    let auth = app.auth().unwrap();
    for (name, staff, superuser) in [
        ("root", true, true),
        ("editor", true, false),
        ("deleter", true, false),
        ("clerk", true, false),
        ("reader", false, false),
        ("keeper", true, false),
    ] {
        auth.create_user(NewUser {
            username: name.into(),
            password: format!("{name}-secret-9"),
            is_staff: staff,
            is_superuser: superuser,
            ..NewUser::default()
        })
        .await
        .unwrap();
    }
    for perm in ["books.view", "books.add", "books.change"] {
        auth.grant("editor", perm).await.unwrap();
    }
    for perm in ["books.view", "books.delete"] {
        auth.grant("deleter", perm).await.unwrap();
    }
    for perm in ["books.view", "books.add", "books.change", "books.delete"] {
        auth.grant("reader", perm).await.unwrap();
    }
    for action in ["view", "add", "change", "delete"] {
        auth.grant("keeper", &format!("ferrule_users.{action}"))
            .await
            .unwrap();
    }
    let server = TestServer::start(app).await.unwrap();
    Some(Fixture { server, db, auth })
}

impl Fixture {
    /// A tab logged in as `name`.
    async fn tab(&self, name: &str) -> TestClient {
        let cookie = self
            .server
            .login(name, &format!("{name}-secret-9"))
            .await
            .unwrap();
        self.server
            .client_with(ClientOptions::default().header("cookie", cookie))
            .await
            .unwrap()
    }
}

async fn call(tab: &mut TestClient, handler: &str, payload: Value) -> StateUpdate {
    tab.call(&format!("ferrule_admin.{handler}"), payload)
        .await
        .unwrap()
}

fn admin(tab: &TestClient) -> AdminState {
    tab.state::<AdminState>().unwrap()
}

fn toast(u: &StateUpdate) -> Option<String> {
    u.events_named("_toast")
        .next()
        .and_then(|t| t.message())
        .map(str::to_owned)
}

/// The field messages of a refused form.
fn invalid(u: &StateUpdate) -> Value {
    u.events_named("_invalid")
        .next()
        .map(|e| e.payload["fields"].clone())
        .unwrap_or(Value::Null)
}

/// Asserts `u` was refused for want of permission and changed nothing.
fn refused(u: &StateUpdate) {
    assert_eq!(toast(u).as_deref(), Some(FORBIDDEN), "{u:?}");
    assert!(
        !u.delta.contains_key("ferrule_admin"),
        "nothing changed: {u:?}"
    );
}

async fn list(tab: &mut TestClient, query: Value) -> ListPage {
    let mut payload = json!({"model": "books"});
    payload
        .as_object_mut()
        .unwrap()
        .extend(query.as_object().unwrap().clone());
    let u = call(tab, "list", payload).await;
    assert!(toast(&u).is_none(), "{u:?}");
    admin(tab).list.unwrap()
}

fn titles(page: &ListPage) -> Vec<String> {
    page.rows
        .iter()
        .map(|r| r.cells[0].clone().unwrap_or_default())
        .collect()
}

/// Saves a new book with `values`, its id.
async fn create(tab: &mut TestClient, values: Value) -> String {
    let u = call(tab, "save", json!({"model": "books", "values": values})).await;
    assert!(toast(&u).is_none(), "{u:?}");
    admin(tab).object.unwrap().id.unwrap()
}

async fn count_books(db: &TestDb) -> u64 {
    use ferrule::db::sea_orm::{EntityTrait, PaginatorTrait};
    book::Entity::find().count(&db.conn).await.unwrap()
}

async fn staff_with_permissions_create_edit_search_filter_order_and_page(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    let mut editor = f.tab("editor").await;
    call(&mut editor, "index", json!({})).await;
    let state = admin(&editor);
    assert_eq!(state.path, "/admin");
    let models: Vec<_> = state.models.iter().map(|m| m.model.as_str()).collect();
    assert_eq!(models, ["books"], "only what the editor may see");
    let books = &state.models[0];
    assert!(books.view && books.add && books.change && !books.delete);

    call(&mut editor, "new", json!({"model": "books"})).await;
    let form = admin(&editor).object.unwrap();
    assert_eq!(form.id, None);
    let names: Vec<_> = form
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.read_only))
        .collect();
    assert_eq!(
        names,
        [
            ("id", true),
            ("title", false),
            ("pages", false),
            ("price", false),
            ("in_print", false),
            ("published", false),
            ("owner", true)
        ]
    );
    let dune = create(
        &mut editor,
        json!({"title": "Dune", "pages": "412", "price": "9.5", "in_print": "true",
               "published": "1965-08-01"}),
    )
    .await;
    let opened = admin(&editor).object.unwrap();
    let value = |name: &str| {
        opened
            .fields
            .iter()
            .find(|f| f.name == name)
            .unwrap()
            .value
            .clone()
    };
    assert_eq!(value("pages").as_deref(), Some("412"));
    assert_eq!(value("published").as_deref(), Some("1965-08-01"));
    assert_eq!(
        value("owner").as_deref(),
        Some(""),
        "the database's default"
    );
    let log = admin(&editor).log;
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].action.as_str(), log[0].username.as_str()),
        ("add", "editor")
    );
    assert!(
        log[0]
            .changes
            .iter()
            .any(|c| c.field == "pages" && c.old.is_none() && c.new.as_deref() == Some("412"))
    );

    // A bad number is that field's message, and nothing is written, new row or old.
    let u = call(
        &mut editor,
        "save",
        json!({"model": "books", "values": {"title": "Emma", "pages": "many", "in_print": "false"}}),
    )
    .await;
    assert_eq!(invalid(&u), json!({"pages": ["Enter a whole number."]}));
    assert_eq!(count_books(&f.db).await, 1);
    let u = call(
        &mut editor,
        "save",
        json!({"model": "books", "id": dune, "values": {"title": "Dune II", "pages": "4x"}}),
    )
    .await;
    assert_eq!(invalid(&u), json!({"pages": ["Enter a whole number."]}));
    let u = call(
        &mut editor,
        "save",
        json!({"model": "books", "id": dune, "values": {"owner": "mallory"}}),
    )
    .await;
    assert_eq!(
        invalid(&u),
        json!({"owner": ["This field cannot be changed."]})
    );
    let u = call(
        &mut editor,
        "save",
        json!({"model": "books", "values": {"title": "No pages"}}),
    )
    .await;
    assert_eq!(
        invalid(&u),
        json!({"in_print": ["Required."], "pages": ["Required."]})
    );
    call(&mut editor, "open", json!({"model": "books", "id": dune})).await;
    assert_eq!(admin(&editor).log.len(), 1, "refused saves are not logged");

    // An edit changes only what it gives, and the log says what it was.
    let u = call(
        &mut editor,
        "save",
        json!({"model": "books", "id": dune, "values": {"title": "Dune Messiah", "pages": "412"}}),
    )
    .await;
    assert!(toast(&u).is_none(), "{u:?}");
    call(&mut editor, "log", json!({"model": "books", "id": dune})).await;
    let log = admin(&editor).log;
    assert_eq!(
        log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["change", "add"],
        "newest first"
    );
    assert_eq!(
        serde_json::to_value(&log[0].changes).unwrap(),
        json!([{"field": "title", "old": "Dune", "new": "Dune Messiah"}]),
        "only what changed"
    );
    let padded = format!(" {dune} ");
    call(&mut editor, "open", json!({"model": "books", "id": padded})).await;
    let opened = admin(&editor);
    assert_eq!(
        opened.object.unwrap().id,
        Some(dune.clone()),
        "the key as stored"
    );
    assert_eq!(opened.log.len(), 2, "and its log");

    // Exactly a page full, then one more row: a second page with that row alone.
    create(
        &mut editor,
        json!({"title": "Emma", "pages": "300", "in_print": "false"}),
    )
    .await;
    create(
        &mut editor,
        json!({"title": "Dracula", "pages": "418", "in_print": "true"}),
    )
    .await;
    let full = list(&mut editor, json!({})).await;
    assert_eq!((full.total, full.pages, full.rows.len()), (3, 1, 3));
    assert_eq!(
        titles(&full),
        ["Dracula", "Dune Messiah", "Emma"],
        "by title"
    );
    assert_eq!(full.columns, ["title", "pages", "in_print"]);
    create(
        &mut editor,
        json!({"title": "Hamlet", "pages": "104", "in_print": "false"}),
    )
    .await;
    let first = list(&mut editor, json!({"page": 1})).await;
    assert_eq!((first.total, first.pages, first.rows.len()), (4, 2, 3));
    let second = list(&mut editor, json!({"page": 2})).await;
    assert_eq!(titles(&second), ["Hamlet"]);
    let past = list(&mut editor, json!({"page": 9})).await;
    assert_eq!((past.page, titles(&past)), (2, vec!["Hamlet".to_owned()]));

    // Search (any case), filters, ordering.
    let found = list(&mut editor, json!({"search": "DU"})).await;
    assert_eq!(titles(&found), ["Dune Messiah"]);
    let found = list(&mut editor, json!({"search": "m"})).await;
    assert_eq!(titles(&found), ["Dune Messiah", "Emma", "Hamlet"]);
    let out_of_print = list(&mut editor, json!({"filters": {"in_print": "false"}})).await;
    assert_eq!(titles(&out_of_print), ["Emma", "Hamlet"]);
    let undated = list(&mut editor, json!({"filters": {"published": ""}})).await;
    assert_eq!(undated.total, 3, "an empty filter value is NULL");
    let both = list(
        &mut editor,
        json!({"search": "a", "filters": {"in_print": "true"}, "ordering": "-pages"}),
    )
    .await;
    assert_eq!(titles(&both), ["Dracula", "Dune Messiah"]);
    assert_eq!(both.query.ordering, "-pages");
    let u = call(
        &mut editor,
        "list",
        json!({"model": "books", "filters": {"pages": "1", "in_print": "maybe"}}),
    )
    .await;
    assert_eq!(
        invalid(&u),
        json!({"in_print": ["Enter true or false."], "pages": ["Not a filter of this list."]})
    );

    // The editor may not delete.
    let u = call(&mut editor, "delete", json!({"model": "books", "id": dune})).await;
    refused(&u);
    let u = call(
        &mut editor,
        "delete_many",
        json!({"model": "books", "ids": [dune]}),
    )
    .await;
    refused(&u);
    assert_eq!(count_books(&f.db).await, 4);
    f.db.cleanup().await;
}

async fn deletes_need_the_delete_permission_and_are_logged(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    let mut editor = f.tab("editor").await;
    let mut ids = Vec::new();
    for title in ["A", "B", "C", "D"] {
        ids.push(
            create(
                &mut editor,
                json!({"title": title, "pages": "1", "in_print": "true"}),
            )
            .await,
        );
    }
    let mut deleter = f.tab("deleter").await;
    let u = call(
        &mut deleter,
        "save",
        json!({"model": "books", "id": ids[0], "values": {"title": "Z"}}),
    )
    .await;
    refused(&u);
    list(&mut deleter, json!({})).await;
    // The log keeps the key as stored, however the request wrote it.
    let padded = format!(" {} ", ids[0]);
    let u = call(
        &mut deleter,
        "delete",
        json!({"model": "books", "id": padded}),
    )
    .await;
    assert!(toast(&u).is_none(), "{u:?}");
    let listed_after = admin(&deleter).list;
    call(&mut deleter, "log", json!({"model": "books", "id": ids[0]})).await;
    assert_eq!(admin(&deleter).log[0].action, "delete");
    assert_eq!(
        titles(&listed_after.unwrap()),
        ["B", "C", "D"],
        "the list shown is listed again"
    );

    // The row shown, deleted: its form goes, its log stays in view with the delete on top.
    call(
        &mut deleter,
        "open",
        json!({"model": "books", "id": ids[3]}),
    )
    .await;
    assert!(admin(&deleter).object.is_some());
    let u = call(
        &mut deleter,
        "delete",
        json!({"model": "books", "id": ids[3]}),
    )
    .await;
    assert!(toast(&u).is_none(), "{u:?}");
    let shown = admin(&deleter);
    assert!(shown.object.is_none(), "the deleted row's form is gone");
    assert_eq!(
        shown
            .log
            .iter()
            .map(|e| e.action.as_str())
            .collect::<Vec<_>>(),
        ["delete", "add"]
    );
    assert_eq!(shown.log[0].object_id, ids[3]);

    // Bulk: all or none.
    let u = call(
        &mut deleter,
        "delete_many",
        json!({"model": "books", "ids": [ids[1], "999"]}),
    )
    .await;
    assert!(toast(&u).is_some_and(|t| t.contains("999")), "{u:?}");
    assert_eq!(count_books(&f.db).await, 2, "none deleted");
    let u = call(
        &mut deleter,
        "delete_many",
        json!({"model": "books", "ids": [ids[1], ids[2]]}),
    )
    .await;
    assert!(toast(&u).is_none(), "{u:?}");
    assert_eq!(count_books(&f.db).await, 0);
    assert!(titles(&admin(&deleter).list.unwrap()).is_empty());

    call(&mut deleter, "log", json!({"model": "books", "id": ids[1]})).await;
    let log = admin(&deleter).log;
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[0].action.as_str(), log[0].username.as_str()),
        ("delete", "deleter")
    );
    assert!(
        log[0]
            .changes
            .iter()
            .any(|c| c.field == "title" && c.old.as_deref() == Some("B") && c.new.is_none())
    );
    let u = call(
        &mut deleter,
        "open",
        json!({"model": "books", "id": ids[1]}),
    )
    .await;
    assert!(toast(&u).is_some_and(|t| t.contains("No row")), "{u:?}");
    f.db.cleanup().await;
}

async fn non_staff_and_staff_without_permissions_are_refused(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    let mut editor = f.tab("editor").await;
    let id = create(
        &mut editor,
        json!({"title": "A", "pages": "1", "in_print": "true"}),
    )
    .await;
    // Every permission on books, but not staff.
    let mut reader = f.tab("reader").await;
    for (handler, payload) in [
        ("index", json!({})),
        ("list", json!({"model": "books"})),
        ("open", json!({"model": "books", "id": id})),
        ("new", json!({"model": "books"})),
        (
            "save",
            json!({"model": "books", "values": {"title": "B", "pages": "1", "in_print": "true"}}),
        ),
        (
            "save",
            json!({"model": "books", "id": id, "values": {"title": "B"}}),
        ),
        ("delete", json!({"model": "books", "id": id})),
        ("delete_many", json!({"model": "books", "ids": [id]})),
        ("log", json!({"model": "books", "id": id})),
    ] {
        let u = call(&mut reader, handler, payload).await;
        refused(&u);
    }
    // Staff, but no permission on books.
    let mut clerk = f.tab("clerk").await;
    call(&mut clerk, "index", json!({})).await;
    assert!(admin(&clerk).models.is_empty());
    refused(&call(&mut clerk, "list", json!({"model": "books"})).await);
    refused(&call(&mut clerk, "open", json!({"model": "books", "id": id})).await);
    let u = call(
        &mut clerk,
        "save",
        json!({"model": "books", "values": {"title": "B", "pages": "1", "in_print": "true"}}),
    )
    .await;
    refused(&u);
    assert_eq!(count_books(&f.db).await, 1);
    // Anonymous: sent to log in, nothing run.
    let mut anonymous = f.server.client().await.unwrap();
    let u = call(&mut anonymous, "list", json!({"model": "books"})).await;
    assert!(!u.delta.contains_key("ferrule_admin"), "{u:?}");
    assert!(u.events_named("_redirect").next().is_some(), "{u:?}");
    // The grant reaches the clerk's next event.
    f.auth.grant("clerk", "books.view").await.unwrap();
    assert_eq!(titles(&list(&mut clerk, json!({})).await), ["A"]);
    f.db.cleanup().await;
}

/// The id of the row of `model` whose listed first column is `name`.
async fn id_of(tab: &mut TestClient, model: &str, name: &str) -> String {
    let u = call(tab, "list", json!({"model": model, "search": name})).await;
    assert!(toast(&u).is_none(), "{u:?}");
    let page = admin(tab).list.unwrap();
    page.rows
        .iter()
        .find(|r| r.cells[0].as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no `{name}` in {page:?}"))
        .id
        .clone()
}

async fn a_superuser_manages_groups_permissions_and_passwords(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    let mut root = f.tab("root").await;
    call(&mut root, "index", json!({})).await;
    let models: Vec<_> = admin(&root).models.into_iter().map(|m| m.model).collect();
    assert_eq!(
        models,
        [
            "books",
            "ferrule_users",
            "ferrule_groups",
            "ferrule_permissions"
        ]
    );

    // A group granting two permissions, made from the admin.
    let u = call(
        &mut root,
        "save",
        json!({"model": "ferrule_groups", "values": {"name": "shelvers", "permissions": "books.view, books.change"}}),
    )
    .await;
    assert!(toast(&u).is_none(), "{u:?}");
    assert_eq!(
        f.auth.group_permissions("shelvers").await.unwrap(),
        ["books.change", "books.view"]
    );

    // The clerk (staff, no permission) is put into it, given a permission and a password; a
    // weak password refuses the whole form and changes nothing.
    let clerk = id_of(&mut root, "ferrule_users", "clerk").await;
    let u = call(
        &mut root,
        "save",
        json!({"model": "ferrule_users", "id": clerk,
               "values": {"groups": "shelvers", "password": "password"}}),
    )
    .await;
    assert_eq!(
        invalid(&u)["password"].as_array().map(Vec::len),
        Some(1),
        "{u:?}"
    );
    assert!(
        f.auth
            .find_by_username("clerk")
            .await
            .unwrap()
            .unwrap()
            .groups
            .is_empty()
    );
    let u = call(
        &mut root,
        "save",
        json!({"model": "ferrule_users", "id": clerk, "values": {
            "groups": "shelvers", "permissions": "books.delete", "password": "grey-heron-lantern-7",
            "username": "mallory"}}),
    )
    .await;
    assert_eq!(
        invalid(&u),
        json!({"username": ["This field cannot be changed."]})
    );
    let u = call(
        &mut root,
        "save",
        json!({"model": "ferrule_users", "id": clerk, "values": {
            "groups": "shelvers", "permissions": "books.delete", "password": "grey-heron-lantern-7"}}),
    )
    .await;
    assert!(toast(&u).is_none(), "{u:?}");
    let opened = admin(&root).object.unwrap();
    let shown = |name: &str| {
        opened
            .fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.clone())
    };
    assert_eq!(shown("groups"), Some(Some("shelvers".into())));
    assert_eq!(shown("permissions"), Some(Some("books.delete".into())));
    assert_eq!(shown("password"), Some(None), "a password is never shown");
    assert_eq!(shown("password_hash"), None);
    let everything = serde_json::to_string(&admin(&root)).unwrap();
    assert!(
        !everything.contains("$argon2"),
        "no hash anywhere: {everything}"
    );
    let log = &admin(&root).log[0];
    assert!(
        log.changes
            .iter()
            .any(|c| c.field == "password" && c.new.as_deref() == Some("(set)"))
    );

    // The new password logs in, the old one no longer does, and the grants work.
    assert!(f.server.login("clerk", "clerk-secret-9").await.is_err());
    let cookie = f
        .server
        .login("clerk", "grey-heron-lantern-7")
        .await
        .unwrap();
    let mut clerk_tab = f
        .server
        .client_with(ClientOptions::default().header("cookie", cookie))
        .await
        .unwrap();
    let id = create(
        &mut root,
        json!({"title": "A", "pages": "1", "in_print": "true"}),
    )
    .await;
    assert_eq!(
        titles(&list(&mut clerk_tab, json!({})).await),
        ["A"],
        "view through the group"
    );
    let u = call(
        &mut clerk_tab,
        "delete",
        json!({"model": "books", "id": id}),
    )
    .await;
    assert!(toast(&u).is_none(), "delete of their own: {u:?}");
    refused(&call(&mut clerk_tab, "list", json!({"model": "ferrule_users"})).await);

    // Taken out of the group and the permission taken back: refused at the next event.
    let u = call(
        &mut root,
        "save",
        json!({"model": "ferrule_users", "id": clerk, "values": {"groups": "", "permissions": ""}}),
    )
    .await;
    assert!(toast(&u).is_none(), "{u:?}");
    refused(&call(&mut clerk_tab, "list", json!({"model": "books"})).await);
    assert!(f.auth.own_permissions("clerk").await.unwrap().is_empty());

    // A new account from the admin, a staff flag, then deleted; each step logged.
    let u = call(
        &mut root,
        "save",
        json!({"model": "ferrule_users", "values": {"username": "newbie", "password": "short"}}),
    )
    .await;
    assert_eq!(
        invalid(&u)["password"].as_array().map(Vec::len),
        Some(1),
        "{u:?}"
    );
    let u = call(
        &mut root,
        "save",
        json!({"model": "ferrule_users", "values": {
            "username": "newbie", "password": "copper-kettle-meadow-3", "is_staff": "true"}}),
    )
    .await;
    assert!(toast(&u).is_none(), "{u:?}");
    let newbie = admin(&root).object.unwrap().id.unwrap();
    assert!(
        f.auth
            .find_by_username("newbie")
            .await
            .unwrap()
            .unwrap()
            .is_staff
    );
    f.server
        .login("newbie", "copper-kettle-meadow-3")
        .await
        .unwrap();
    let u = call(
        &mut root,
        "delete",
        json!({"model": "ferrule_users", "id": newbie}),
    )
    .await;
    assert!(toast(&u).is_none(), "{u:?}");
    assert!(f.auth.find_by_username("newbie").await.unwrap().is_none());
    call(
        &mut root,
        "log",
        json!({"model": "ferrule_users", "id": newbie}),
    )
    .await;
    let actions: Vec<_> = admin(&root).log.iter().map(|e| e.action.clone()).collect();
    assert_eq!(actions, ["delete", "add"]);

    // Permissions: made, then deleted with what held them.
    let u = call(
        &mut root,
        "save",
        json!({"model": "ferrule_permissions", "values": {"codename": "books.export"}}),
    )
    .await;
    assert!(toast(&u).is_none(), "{u:?}");
    let export = admin(&root).object.unwrap().id.unwrap();
    f.auth
        .grant_group("shelvers", "books.export")
        .await
        .unwrap();
    call(
        &mut root,
        "delete",
        json!({"model": "ferrule_permissions", "id": export}),
    )
    .await;
    assert_eq!(
        f.auth.group_permissions("shelvers").await.unwrap(),
        ["books.change", "books.view"]
    );
    let shelvers = id_of(&mut root, "ferrule_groups", "shelvers").await;
    call(
        &mut root,
        "delete",
        json!({"model": "ferrule_groups", "id": shelvers}),
    )
    .await;
    assert_eq!(f.auth.group_names().await.unwrap(), Vec::<String>::new());
    f.db.cleanup().await;
}

/// The admin's path is the `admin_path` setting, which must be a path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_is_where_the_setting_says() {
    let err = ferrule::Settings::from_toml("admin_path = \"backoffice\"").unwrap_err();
    assert!(err.contains("admin_path"), "{err}");
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let settings = ferrule::Settings::from_toml("admin_path = \"/backoffice\"").unwrap();
    let app = App::new()
        .settings(settings)
        .database(db.conn.clone())
        .admin_accounts();
    let auth = app.auth().unwrap();
    auth.create_user(NewUser {
        username: "root".into(),
        password: "root-secret-9".into(),
        is_superuser: true,
        ..NewUser::default()
    })
    .await
    .unwrap();
    let server = TestServer::start(app).await.unwrap();
    let cookie = server.login("root", "root-secret-9").await.unwrap();
    let mut root = server
        .client_with(ClientOptions::default().header("cookie", cookie))
        .await
        .unwrap();
    call(&mut root, "index", json!({})).await;
    let state = admin(&root);
    assert_eq!(state.path, "/backoffice");
    let models: Vec<_> = state.models.iter().map(|m| m.model.as_str()).collect();
    assert_eq!(
        models,
        ["ferrule_users", "ferrule_groups", "ferrule_permissions"],
        "the accounts alone"
    );
    db.cleanup().await;
}

/// Holding `ferrule_users.change` is no way to a superuser's powers or accounts.
async fn managing_users_does_not_reach_superusers(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    let mut keeper = f.tab("keeper").await;
    let clerk = id_of(&mut keeper, "ferrule_users", "clerk").await;
    let root = id_of(&mut keeper, "ferrule_users", "root").await;
    let u = call(
        &mut keeper,
        "save",
        json!({"model": "ferrule_users", "id": clerk, "values": {"is_superuser": "true"}}),
    )
    .await;
    assert_eq!(
        invalid(&u),
        json!({"is_superuser": ["Only a superuser may change this."]})
    );
    let u = call(
        &mut keeper,
        "save",
        json!({"model": "ferrule_users", "values": {
            "username": "boss", "password": "copper-kettle-meadow-3", "is_superuser": "true"}}),
    )
    .await;
    assert_eq!(
        invalid(&u),
        json!({"is_superuser": ["Only a superuser may change this."]})
    );
    assert!(f.auth.find_by_username("boss").await.unwrap().is_none());
    let denied = Some("Only a superuser may change a superuser's account.".to_owned());
    let u = call(
        &mut keeper,
        "save",
        json!({"model": "ferrule_users", "id": root, "values": {"password": "grey-heron-lantern-7"}}),
    )
    .await;
    assert_eq!(toast(&u), denied);
    let u = call(
        &mut keeper,
        "delete",
        json!({"model": "ferrule_users", "id": root}),
    )
    .await;
    assert_eq!(toast(&u), denied);
    f.server.login("root", "root-secret-9").await.unwrap();
    // What is theirs to do still works.
    let u = call(
        &mut keeper,
        "save",
        json!({"model": "ferrule_users", "id": clerk, "values": {"is_staff": "false"}}),
    )
    .await;
    assert!(toast(&u).is_none(), "{u:?}");
    assert!(
        !f.auth
            .find_by_username("clerk")
            .await
            .unwrap()
            .unwrap()
            .is_staff
    );
    f.db.cleanup().await;
}

/// A page that shows the books live: it counts them.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
struct ShelfState {
    books: u64,
}

impl ShelfState {
    async fn load(&mut self, ctx: EventContext) -> Result<(), ferrule::Error> {
        use ferrule::db::sea_orm::{EntityTrait, PaginatorTrait};
        self.books = book::Entity::find().count(ctx.db()?).await?;
        Ok(())
    }
}

impl ferrule::protocol::StateName for ShelfState {}

impl State for ShelfState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("load", Self::load).on_change("books");
    }
}

/// An admin save or delete tells the tabs that show its table live, which reload it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_writes_reach_the_tabs_that_show_the_table_live() {
    let Some(f) = fixture_with(Backend::Sqlite, |app| app.state::<ShelfState>()).await else {
        return;
    };
    let mut editor = f.tab("editor").await;
    create(
        &mut editor,
        json!({"title": "A", "pages": "1", "in_print": "true"}),
    )
    .await;
    let mut watcher = f.server.client().await.unwrap();
    let loaded = watcher.call("shelf_state.load", json!({})).await.unwrap();
    assert_eq!(
        loaded.delta.get("shelf_state").map(|s| s["books"].clone()),
        Some(json!(1)),
        "{loaded:?}"
    );
    let id = create(
        &mut editor,
        json!({"title": "B", "pages": "1", "in_print": "true"}),
    )
    .await;
    assert_eq!(
        watcher.next_change(std::time::Duration::from_secs(2)).await,
        Some(vec!["books".to_owned()])
    );
    let fresh = watcher.reload_live(&["books"]).await.unwrap();
    assert_eq!(fresh.delta["shelf_state"]["books"], json!(2));
    // A refused save changes nothing and tells nothing.
    call(
        &mut editor,
        "save",
        json!({"model": "books", "id": id, "values": {"pages": "x"}}),
    )
    .await;
    assert_eq!(
        watcher.next_change(std::time::Duration::from_secs(2)).await,
        None
    );
    let mut deleter = f.tab("deleter").await;
    call(&mut deleter, "delete", json!({"model": "books", "id": id})).await;
    assert_eq!(
        watcher.next_change(std::time::Duration::from_secs(2)).await,
        Some(vec!["books".to_owned()])
    );
    f.db.cleanup().await;
}

on_both!(
    staff_with_permissions_create_edit_search_filter_order_and_page,
    deletes_need_the_delete_permission_and_are_logged,
    non_staff_and_staff_without_permissions_are_refused,
    a_superuser_manages_groups_permissions_and_passwords,
    managing_users_does_not_reach_superusers,
);

/// A staff tab's admin list follows what another tab changes in its table, and what `Auth`
/// changes in the accounts' (the admin's state reloads its list for every model's table).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_list_follows_changes_made_elsewhere() {
    let Some(f) = fixture(Backend::Sqlite).await else {
        return;
    };
    let mut editor = f.tab("editor").await;
    let mut watching = f.tab("root").await;
    let before = list(&mut watching, json!({})).await;
    assert_eq!(before.total, 0);
    create(
        &mut editor,
        json!({"title": "Elsewhere", "pages": "3", "in_print": "true"}),
    )
    .await;
    let wait = std::time::Duration::from_secs(5);
    let told = watching.next_change(wait).await.expect("told");
    assert!(told.contains(&"books".to_owned()), "{told:?}");
    watching.reload_live(&told).await.unwrap();
    assert_eq!(titles(&admin(&watching).list.unwrap()), ["Elsewhere"]);
    // The accounts' list follows `Auth`, whoever calls it.
    call(&mut watching, "list", json!({"model": "ferrule_users"})).await;
    let users = admin(&watching).list.unwrap().total;
    f.auth
        .create_user(NewUser {
            username: "newcomer".into(),
            password: "newcomer-secret-9".into(),
            ..NewUser::default()
        })
        .await
        .unwrap();
    let told = loop {
        let told = watching.next_change(wait).await.expect("told");
        if told.contains(&"ferrule_users".to_owned()) {
            break told;
        }
    };
    watching.reload_live(&told).await.unwrap();
    assert_eq!(admin(&watching).list.unwrap().total, users + 1);
    f.db.cleanup().await;
}
