//! What a `references:<table>` field needs of the table it points at, read from the app's
//! sources: the sea-orm entity that maps the table (a scaffold's, or the template's notes),
//! the column that names a row on the page, and a row the generated tests can insert.

use super::*;

/// The table a reference points at, as the app's code has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The entity module's path from the crate root: `crate::category::server::category`.
    pub(crate) entity: String,
    /// The first text column (besides `owner`): what the page shows for a row.
    pub(crate) label: Option<String>,
    /// An `INSERT` of one row with every required column filled, for the generated tests.
    pub(crate) sample_row: String,
}

/// Finds the entity of `table` among the app's `src/*.rs` files.
pub(crate) fn find(root: &Path, table: &str, spec: &str) -> Result<Target> {
    let needle = format!("table_name = \"{table}\"");
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("src"))
        .with_context(|| format!("reading {}", root.join("src").display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let Some(at) = text.find(&needle) else {
            continue;
        };
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let before = &text[..at];
        let modules: Vec<&str> = before
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pub mod "))
            .filter_map(|l| l.strip_suffix(" {"))
            .collect();
        let [.., "server", inner] = modules[..] else {
            bail!(
                "field `{spec}`: the `{table}` table's entity in {} is not in a `pub mod server {{ pub mod <name> {{ .. }} }}` as a scaffold's is",
                file.display()
            );
        };
        let columns = model_columns(&text[at..]);
        let label = columns
            .iter()
            .find(|(name, ty)| ty == "String" && name != "owner")
            .map(|(name, _)| name.clone());
        return Ok(Target {
            entity: format!("crate::{stem}::server::{inner}"),
            label,
            sample_row: sample_row(table, &columns),
        });
    }
    bail!(
        "field `{spec}`: this app has no `{table}` table in src/*.rs; generate it first (`ferrule generate scaffold <name> name:string` makes one)"
    )
}

/// The `(name, type)` of each field of the first `pub struct Model` in `text`.
fn model_columns(text: &str) -> Vec<(String, String)> {
    text.lines()
        .skip_while(|l| !l.trim_start().starts_with("pub struct Model"))
        .skip(1)
        .take_while(|l| l.trim() != "}")
        .filter_map(|l| l.trim().strip_prefix("pub "))
        .filter_map(|l| l.trim_end_matches(',').split_once(": "))
        .map(|(name, ty)| (name.to_owned(), ty.to_owned()))
        .collect()
}

/// One row of `table` with a plain value in each required column (the id is the database's).
fn sample_row(table: &str, columns: &[(String, String)]) -> String {
    let (names, values): (Vec<&str>, Vec<&str>) = columns
        .iter()
        .filter(|(name, ty)| name != "id" && !ty.starts_with("Option<"))
        .map(|(name, ty)| {
            let value = match ty.as_str() {
                "String" => "'Sample'",
                "bool" => "TRUE",
                "f32" | "f64" => "1.5",
                "TimeDate" | "Date" => "'2026-01-01'",
                "TimeDateTime" | "DateTime" => "'2026-01-01 09:30:00'",
                _ => "1",
            };
            (name.as_str(), value)
        })
        .unzip();
    format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        names.join(", "),
        values.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaffolds_table_is_found_with_its_label_and_a_row_to_insert() {
        let dir = std::env::temp_dir().join(format!("ferrule-references-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(
            dir.join("src/category.rs"),
            "pub mod server {\n    pub mod category {\n        #[sea_orm(table_name = \"categories\")]\n        pub struct Model {\n            #[sea_orm(primary_key)]\n            pub id: i64,\n            pub rank: i32,\n            pub name: String,\n            pub note: Option<String>,\n            pub owner: String,\n        }\n    }\n}\n",
        )
        .unwrap();
        let target = find(&dir, "categories", "category:references:categories").unwrap();
        assert_eq!(target.entity, "crate::category::server::category");
        assert_eq!(target.label.as_deref(), Some("name"));
        assert_eq!(
            target.sample_row,
            "INSERT INTO categories (rank, name, owner) VALUES (1, 'Sample', 'Sample')"
        );
        let missing = find(&dir, "brands", "brand:references:brands").unwrap_err();
        assert!(
            missing.to_string().contains("no `brands` table"),
            "{missing}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
