//! What the generators write, snapshotted per placeholder combination (as Loco does for its
//! generators): a template or generator change shows up as a reviewable diff of the output.
//! Refresh with `INSTA_UPDATE=always cargo test -p ferrule-cli --test snapshots` and review.

mod common;

use std::path::{Path, PathBuf};

use common::{files, scratch};

use ferrule_cli::generate::{Kind, apply, plan};
use ferrule_cli::new::{Database, NewOptions, new_app};

/// The listed files of `dir` in one text, each under its name (all files when `only` is empty).
fn bundle(dir: &Path, only: &[&str]) -> String {
    let mut out = String::new();
    for f in files(dir) {
        if !only.is_empty() && !only.contains(&f.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(dir.join(&f)).unwrap();
        // Migration names carry the time they were generated.
        let text = redact_timestamps(&text);
        out.push_str(&format!("==> {f}\n{text}\n"));
    }
    out
}

fn redact_timestamps(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("\"m20") {
        out.push_str(&rest[..i + 2]);
        let tail = &rest[i + 2..];
        let stamp = tail.chars().take(15).collect::<String>();
        if stamp.len() == 15 && stamp.as_bytes()[8] == b'_' {
            out.push_str("YYYYMMDD_HHMMSS");
            rest = &tail[15..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

fn generate_app(name: &str, database: Database, auth: bool) -> PathBuf {
    let parent = scratch(name);
    new_app(&NewOptions {
        name: name.into(),
        database,
        auth,
        parent: parent.clone(),
        ferrule_dep: Some(ferrule_cli::new::registry_ferrule_dep()),
    })
    .unwrap();
    parent.join(name)
}

#[test]
fn new_app_for_each_placeholder_combination() {
    for (database, auth) in [
        (Database::Sqlite, true),
        (Database::Sqlite, false),
        (Database::Postgres, true),
        (Database::Postgres, false),
    ] {
        let label = format!(
            "{}_{}",
            if database == Database::Sqlite {
                "sqlite"
            } else {
                "postgres"
            },
            if auth { "auth" } else { "no_auth" }
        );
        let dir = generate_app("shop", database, auth);
        let listing = files(&dir).join("\n");
        insta::assert_snapshot!(format!("new_{label}_files"), listing);
        insta::assert_snapshot!(format!("new_{label}"), bundle(&dir, &[]));
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    }
}

#[test]
fn generated_code_with_and_without_account_pages() {
    for auth in [true, false] {
        let dir = generate_app("shop", Database::Sqlite, auth);
        for (kind, name, fields) in [
            (Kind::Scaffold, "category", &["name:string"][..]),
            (
                Kind::Scaffold,
                "product",
                &[
                    "category:references:categories",
                    "maker:option<references:categories>",
                    "name:string",
                    "price:i64",
                    "in_stock:bool",
                    "note:option<text>",
                    "weight:option<f64>",
                    "due:date",
                    "seen:option<datetime>",
                ][..],
            ),
            (Kind::State, "cart", &[][..]),
            (Kind::Page, "about", &[][..]),
            (Kind::Middleware, "audit", &[][..]),
        ] {
            let fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
            let plan = plan(&dir, kind, name, &fields).unwrap();
            apply(&dir, &plan).unwrap();
        }
        let label = if auth { "auth" } else { "no_auth" };
        insta::assert_snapshot!(
            format!("generate_{label}"),
            bundle(
                &dir,
                &[
                    "src/lib.rs",
                    "src/server.rs",
                    "src/product.rs",
                    "src/cart.rs",
                    "src/about.rs",
                    "src/audit.rs",
                    "tests/products.rs",
                    "tests/cart.rs",
                    "tests/about.rs",
                    "tests/audit.rs",
                ]
            )
        );
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    }
}

#[test]
fn deployment_files_for_a_dist_directory() {
    let dir = generate_app("corner-shop", Database::Sqlite, true);
    let plan = ferrule_cli::generate::plan_kind(&dir, Kind::Deployment, None, &[]).unwrap();
    apply(&dir, &plan).unwrap();
    let files = ["Dockerfile", ".dockerignore", "deploy/corner-shop.service"];
    insta::assert_snapshot!("deployment", bundle(&dir, &files));
    let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    // The promises the image keeps: a cached dependency layer, the release built into a dist
    // directory, an unprivileged user, a health check on the reserved endpoint.
    for needle in [
        "COPY Cargo.toml Cargo.lock ./",
        "ferrule build --dist /dist",
        "USER corner-shop",
        "HEALTHCHECK",
        "/_health",
        "EXPOSE 3000",
    ] {
        assert!(dockerfile.contains(needle), "{needle}");
    }
    assert!(
        dockerfile.find("COPY Cargo.toml").unwrap() < dockerfile.find("COPY . .").unwrap(),
        "dependencies are built before the app's code is copied"
    );
    let unit = std::fs::read_to_string(dir.join("deploy/corner-shop.service")).unwrap();
    for needle in [
        "User=corner-shop",
        "ExecStart=/srv/corner-shop/corner-shop serve",
        "ReadWritePaths=/srv/corner-shop/data",
        "Restart=on-failure",
    ] {
        assert!(unit.contains(needle), "{needle}");
    }
    let again = ferrule_cli::generate::plan_kind(&dir, Kind::Deployment, None, &[]).unwrap_err();
    assert!(again.to_string().contains("already exists"), "{again}");
    let named = ferrule_cli::generate::plan_kind(&dir, Kind::Deployment, Some("x"), &[]);
    assert!(named.unwrap_err().to_string().contains("takes no name"));
    let unnamed = ferrule_cli::generate::plan_kind(&dir, Kind::State, None, &[]);
    assert!(unnamed.unwrap_err().to_string().contains("needs a name"));
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}
