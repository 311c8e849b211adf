//! Any sea-orm entity as an admin model, through sea-orm's dynamic API: its columns iterated,
//! each value read with `ModelTrait::get` and written with `ActiveModelTrait::set`, parsed from
//! text by the column's value type.

use std::marker::PhantomData;

use sea_orm::sea_query::{ArrayType, Expr, Func, LikeExpr};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait,
    DatabaseConnection, DatabaseTransaction, EntityTrait, IdenStatic, IntoActiveModel, Iterable,
    ModelTrait, PaginatorTrait, PrimaryKeyToColumn, PrimaryKeyTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};

use super::options::ModelAdmin;
use super::values::{REQUIRED, kind_of, parse, show};
use super::{AdminModel, Change, FieldView, ListPage, ListQuery, RowView, Saved, Values};
use crate::Error;
use crate::forms::FieldErrors;

/// One column: its sea-orm column, name and value type.
struct Column<E: EntityTrait> {
    col: E::Column,
    name: &'static str,
    ty: ArrayType,
    nullable: bool,
    /// Given a default by the database, so a new row may leave it out.
    has_default: bool,
    read_only: bool,
}

/// Entity `E` in the admin, with its options.
pub(crate) struct EntityAdmin<E: EntityTrait> {
    table: String,
    label: String,
    options: ModelAdmin,
    columns: Vec<Column<E>>,
    /// Index of the primary key in `columns`.
    pk: usize,
    _entity: PhantomData<fn() -> E>,
}

impl<E: EntityTrait> EntityAdmin<E> {
    /// `E` with `options`; panics, naming the problem, when the entity has no single-column
    /// primary key or an option names a column it lacks (a mistake to fix before it runs).
    pub(crate) fn new(options: ModelAdmin) -> Self {
        let table = E::default().table_name().to_owned();
        let mut keys = E::PrimaryKey::iter();
        let (Some(key), None) = (keys.next(), keys.next()) else {
            panic!("admin: `{table}` needs a primary key of one column");
        };
        let key = key.into_column().as_str();
        let auto = <E::PrimaryKey as PrimaryKeyTrait>::auto_increment();
        let columns: Vec<Column<E>> = E::Column::iter()
            .map(|col| {
                let def = col.def();
                let name = col.as_str();
                Column {
                    col,
                    name,
                    ty: <E::Model as ModelTrait>::get_value_type(col),
                    nullable: def.is_null(),
                    has_default: def.get_column_default().is_some() || (name == key && auto),
                    read_only: options.read_only.iter().any(|r| r == name) || (name == key && auto),
                }
            })
            .collect();
        let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
        let named = [
            ("list_columns", &options.list_columns),
            ("search_fields", &options.search_fields),
            ("filters", &options.filters),
            ("read_only", &options.read_only),
        ];
        for (option, fields) in named {
            if let Some(bad) = fields.iter().find(|f| !names.contains(&f.as_str())) {
                panic!(
                    "admin: {option} of `{table}` names `{bad}`, not one of its columns {names:?}"
                );
            }
        }
        if let Some(order) = &options.ordering
            && !names.contains(&order.trim_start_matches('-'))
        {
            panic!(
                "admin: the ordering of `{table}` names `{order}`, not one of its columns {names:?}"
            );
        }
        let pk = names
            .iter()
            .position(|n| *n == key)
            .expect("the key is a column");
        Self {
            label: options.label.clone().unwrap_or_else(|| table.clone()),
            table,
            options,
            columns,
            pk,
            _entity: PhantomData,
        }
    }

    fn column(&self, name: &str) -> Option<&Column<E>> {
        self.columns.iter().find(|c| c.name == name)
    }

    fn field(c: &Column<E>, value: Option<String>) -> FieldView {
        FieldView {
            name: c.name.to_owned(),
            kind: kind_of(&c.ty),
            nullable: c.nullable,
            read_only: c.read_only,
            value,
        }
    }

    /// The row with key `id`, or not found (a key that does not parse finds nothing either).
    async fn find<C: ConnectionTrait>(&self, db: &C, id: &str) -> Result<E::Model, Error> {
        let pk = &self.columns[self.pk];
        let missing = || Error::NotFound(format!("No row `{id}` in {}.", self.label));
        let key = parse(&pk.ty, false, id).map_err(|_| missing())?;
        E::find()
            .filter(pk.col.eq(key))
            .one(db)
            .await?
            .ok_or_else(missing)
    }

    /// The rows `query` asks for, before paging.
    fn select(&self, query: &ListQuery) -> Result<Select<E>, Error> {
        // Scoped here: `ExprTrait` brings a `max` that clashes with `Ord::max` on numbers.
        use sea_orm::sea_query::ExprTrait;
        let mut select = E::find();
        let search = query.search.trim();
        if !search.is_empty() && !self.options.search_fields.is_empty() {
            // `%` and `_` typed are matched as themselves, not as wildcards.
            let mut escaped = String::new();
            for c in search.to_lowercase().chars() {
                if matches!(c, '%' | '_' | '!') {
                    escaped.push('!');
                }
                escaped.push(c);
            }
            let mut any = Condition::any();
            for name in &self.options.search_fields {
                let c = self.column(name).expect("checked at registration");
                let pattern = LikeExpr::new(format!("%{escaped}%")).escape('!');
                any = any.add(Expr::expr(Func::lower(Expr::col(c.col))).like(pattern));
            }
            select = select.filter(any);
        }
        let mut errors = FieldErrors::new();
        for (name, value) in &query.filters {
            let Some(c) = self
                .column(name)
                .filter(|_| self.options.filters.contains(name))
            else {
                errors.add(name.as_str(), "Not a filter of this list.");
                continue;
            };
            match parse(&c.ty, true, value) {
                Ok(_) if value.trim().is_empty() => select = select.filter(c.col.is_null()),
                Ok(v) => select = select.filter(c.col.eq(v)),
                Err(message) => errors.add(name.as_str(), message),
            }
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        Ok(select)
    }

    /// `ordering` as a column and a direction; the model's own, else the key descending.
    fn order(&self, ordering: &str) -> Result<(&Column<E>, bool), Error> {
        let ordering = match ordering.trim() {
            "" => self.options.ordering.as_deref().unwrap_or(""),
            given => given,
        };
        if ordering.is_empty() {
            return Ok((&self.columns[self.pk], true));
        }
        let (name, descending) = match ordering.strip_prefix('-') {
            Some(name) => (name, true),
            None => (ordering, false),
        };
        let c = self.column(name).ok_or_else(|| {
            Error::bad_request(format!(
                "{} has no column `{name}` to order by.",
                self.label
            ))
        })?;
        Ok((c, descending))
    }
}

#[async_trait::async_trait]
impl<E> AdminModel for EntityAdmin<E>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: Send + Sync,
{
    fn table(&self) -> &str {
        &self.table
    }

    fn label(&self) -> &str {
        &self.label
    }

    fn fields(&self) -> Vec<FieldView> {
        self.columns.iter().map(|c| Self::field(c, None)).collect()
    }

    async fn list(&self, db: &DatabaseConnection, query: &ListQuery) -> Result<ListPage, Error> {
        let select = self.select(query)?;
        let (by, descending) = self.order(&query.ordering)?;
        let size = self.options.page_size;
        let total = select.clone().count(db).await?;
        let pages = total.div_ceil(size).max(1);
        let page = query.page.clamp(1, pages);
        let key = self.columns[self.pk].col;
        let select = match descending {
            true => select.order_by_desc(by.col).order_by_desc(key),
            false => select.order_by_asc(by.col).order_by_asc(key),
        };
        let models = select.offset((page - 1) * size).limit(size).all(db).await?;
        let columns: Vec<&Column<E>> = match self.options.list_columns.is_empty() {
            true => self.columns.iter().collect(),
            false => self
                .options
                .list_columns
                .iter()
                .filter_map(|n| self.column(n))
                .collect(),
        };
        let rows = models
            .iter()
            .map(|m| RowView {
                id: show(&m.get(key)).unwrap_or_default(),
                cells: columns.iter().map(|c| show(&m.get(c.col))).collect(),
            })
            .collect();
        let ordering = format!("{}{}", if descending { "-" } else { "" }, by.name);
        Ok(ListPage {
            model: self.table.clone(),
            columns: columns.iter().map(|c| c.name.to_owned()).collect(),
            search_fields: self.options.search_fields.clone(),
            filter_fields: self.options.filters.clone(),
            rows,
            total,
            page,
            pages,
            page_size: size,
            query: ListQuery {
                ordering,
                page,
                ..query.clone()
            },
        })
    }

    async fn open(&self, db: &DatabaseConnection, id: &str) -> Result<Vec<FieldView>, Error> {
        let model = self.find(db, id).await?;
        Ok(self
            .columns
            .iter()
            .map(|c| Self::field(c, show(&model.get(c.col))))
            .collect())
    }

    async fn save(
        &self,
        tx: &DatabaseTransaction,
        id: Option<&str>,
        values: &Values,
    ) -> Result<Saved, Error> {
        let mut errors = FieldErrors::new();
        for name in values.keys() {
            match self.column(name) {
                None => errors.add(name.as_str(), "No such field."),
                Some(c) if c.read_only => {
                    errors.add(name.as_str(), "This field cannot be changed.")
                }
                Some(_) => {}
            }
        }
        let existing = match id {
            Some(id) => Some(self.find(tx, id).await?),
            None => None,
        };
        let mut row: E::ActiveModel = match &existing {
            Some(m) => m.clone().into_active_model(),
            None => <E::ActiveModel as ActiveModelBehavior>::new(),
        };
        let mut changes = Vec::new();
        for c in self.columns.iter().filter(|c| !c.read_only) {
            let Some(text) = values.get(c.name) else {
                if existing.is_none() && !c.nullable && !c.has_default {
                    errors.add(c.name, REQUIRED);
                }
                continue;
            };
            let value = match parse(&c.ty, c.nullable, text) {
                Ok(v) => v,
                Err(message) => {
                    errors.add(c.name, message);
                    continue;
                }
            };
            let old = existing.as_ref().and_then(|m| show(&m.get(c.col)));
            let new = show(&value);
            if let Err(e) = row.try_set(c.col, value) {
                tracing::warn!(table = %self.table, column = c.name, "admin: {e}");
                errors.add(c.name, "This field cannot be edited here.");
                continue;
            }
            if existing.is_none() || old != new {
                changes.push(Change {
                    field: c.name.to_owned(),
                    old,
                    new,
                });
            }
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let key = self.columns[self.pk].col;
        let Some(existing) = existing else {
            let model = row.insert(tx).await?;
            return Ok(Saved {
                id: show(&model.get(key)).unwrap_or_default(),
                changes,
                created: true,
            });
        };
        let id = show(&existing.get(key)).unwrap_or_default();
        if !changes.is_empty() {
            row.update(tx).await?;
        }
        Ok(Saved {
            id,
            changes,
            created: false,
        })
    }

    async fn delete(
        &self,
        tx: &DatabaseTransaction,
        id: &str,
    ) -> Result<(String, Vec<Change>), Error> {
        let model = self.find(tx, id).await?;
        let held = self
            .columns
            .iter()
            .map(|c| Change {
                field: c.name.to_owned(),
                old: show(&model.get(c.col)),
                new: None,
            })
            .collect();
        let key = show(&model.get(self.columns[self.pk].col)).unwrap_or_default();
        model.into_active_model().delete(tx).await?;
        Ok((key, held))
    }
}
