//! sea-orm entities of the runtime's tables.

/// A session row: the id tower-sessions gives it, its data as JSON, and when it expires.
pub mod session {
    use sea_orm::entity::prelude::*;

    /// One session.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ferrule_sessions")]
    pub struct Model {
        /// The session id as tower-sessions encodes it.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// The session data, a JSON object.
        pub data: String,
        /// Unix seconds after which the session is void.
        pub expiry_date: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A user account.
pub mod user {
    use sea_orm::entity::prelude::*;

    /// A username as stored: NFKC-normalised, as Django does, so that a full-width or
    /// otherwise compatible look-alike of a name is that name.
    pub fn normalize(username: &str) -> String {
        use unicode_normalization::UnicodeNormalization;
        username.nfkc().collect()
    }

    /// What makes two usernames one account: the NFKC form, lower-cased (Unicode-wide).
    pub fn key(username: &str) -> String {
        normalize(username).to_lowercase()
    }

    /// One user.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ferrule_users")]
    pub struct Model {
        /// Primary key.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Login name as typed at registration, NFKC-normalised.
        #[sea_orm(unique)]
        pub username: String,
        /// The name's NFKC form lower-cased: unique, so no two accounts differ only in case
        /// or by compatible characters; logins look names up by it.
        #[sea_orm(unique)]
        pub username_key: String,
        /// Optional unique e-mail.
        #[sea_orm(unique)]
        pub email: Option<String>,
        /// argon2 PHC string.
        pub password_hash: String,
        /// Inactive users cannot log in and count as anonymous.
        pub is_active: bool,
        /// May use staff pages.
        pub is_staff: bool,
        /// Holds every permission.
        pub is_superuser: bool,
        /// The language the user chose, a tag of the `languages` setting.
        pub language: Option<String>,
        /// The user followed the link that confirms `email` (accounts older than the
        /// confirmation count as confirmed).
        pub email_verified: bool,
        /// Unix seconds of account creation.
        pub date_joined: i64,
        /// Unix seconds of the last login.
        pub last_login: Option<i64>,
    }

    /// No relations declared; joins go through the link tables.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A group of users sharing permissions.
pub mod group {
    use sea_orm::entity::prelude::*;

    /// One group.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ferrule_groups")]
    pub struct Model {
        /// Primary key.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Unique name.
        #[sea_orm(unique)]
        pub name: String,
    }

    /// No relations declared.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A permission code such as `shop.refund`.
pub mod permission {
    use sea_orm::entity::prelude::*;

    /// One permission.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ferrule_permissions")]
    pub struct Model {
        /// Primary key.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Unique code, `app.action`.
        #[sea_orm(unique)]
        pub codename: String,
    }

    /// No relations declared.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
