//! The shop's tables (sea-orm entities) and the migration that creates them.

use ferrule::db::sea_orm_migration_prelude::*;

/// `tenants`: the shops.
pub mod tenant {
    use sea_orm::entity::prelude::*;

    /// One shop.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tenants")]
    pub struct Model {
        /// Primary key.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Unique name.
        pub name: String,
    }

    /// No relations followed from here.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `profiles`: which shop a user belongs to, and whether the user is banned.
pub mod profile {
    use sea_orm::entity::prelude::*;

    /// One user's profile (its key is the user's id).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "profiles")]
    pub struct Model {
        /// The user (`users.id`).
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i64,
        /// The shop.
        pub tenant_id: i64,
        /// Banned users' events are refused ("Account suspended.").
        pub banned: bool,
    }

    /// No relations followed from here.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `products`: what a shop sells.
pub mod product {
    use sea_orm::entity::prelude::*;

    /// One product.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "products")]
    pub struct Model {
        /// Primary key.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The shop selling it.
        pub tenant_id: i64,
        /// Its name.
        pub name: String,
        /// Its price in cents.
        pub price_cents: i64,
    }

    /// No relations followed from here.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `cart_items`: what a user is about to buy.
pub mod cart_item {
    use sea_orm::entity::prelude::*;

    /// One line of a cart.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "cart_items")]
    pub struct Model {
        /// Primary key.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Whose cart.
        pub user_id: i64,
        /// Which product.
        pub product_id: i64,
        /// How many.
        pub quantity: i64,
    }

    /// A line's product.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        /// `cart_items.product_id` → `products.id`.
        #[sea_orm(
            belongs_to = "super::product::Entity",
            from = "Column::ProductId",
            to = "super::product::Column::Id"
        )]
        Product,
    }

    impl Related<super::product::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Product.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// `orders`: paid carts, per shop.
pub mod order {
    use sea_orm::entity::prelude::*;

    /// One order.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "orders")]
    pub struct Model {
        /// Primary key.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The shop it was placed in.
        pub tenant_id: i64,
        /// Who placed it (`users.id`).
        pub user_id: i64,
        /// Their username, for the list.
        pub buyer: String,
        /// The total in cents.
        pub total_cents: i64,
    }

    /// No relations followed from here.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The shop's migrations; `migrate` runs them after Ferrule's own.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateShop)]
    }
}

struct CreateShop;

impl MigrationName for CreateShop {
    fn name(&self) -> &str {
        "m0001_create_shop"
    }
}

fn id() -> ColumnDef {
    ColumnDef::new("id")
        .big_integer()
        .primary_key()
        .auto_increment()
        .to_owned()
}

fn big(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}

// sea-orm-migration's trait names the schema manager's lifetime implicitly.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for CreateShop {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("tenants")
                .col(id())
                .col(ColumnDef::new("name").string().not_null().unique_key())
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("profiles")
                .col(big("user_id").primary_key())
                .col(big("tenant_id"))
                .col(ColumnDef::new("banned").boolean().not_null().default(false))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("products")
                .col(id())
                .col(big("tenant_id"))
                .col(ColumnDef::new("name").string().not_null())
                .col(big("price_cents"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("cart_items")
                .col(id())
                .col(big("user_id"))
                .col(big("product_id"))
                .col(big("quantity"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("orders")
                .col(id())
                .col(big("tenant_id"))
                .col(big("user_id"))
                .col(ColumnDef::new("buyer").string().not_null())
                .col(big("total_cents"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["orders", "cart_items", "products", "profiles", "tenants"] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
