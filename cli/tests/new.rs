//! `ferrule new` as a user runs it: the binary, a temporary directory, and what lands on disk.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir =
        std::env::temp_dir().join(format!("ferrule-new-{what}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ferrule(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrule"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run ferrule")
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file under `dir`, relative.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_sqlite_app_has_every_file_and_no_template_syntax_left() {
    let parent = scratch("sqlite");
    let out = ferrule(&["new", "my-shop"], &parent);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app = parent.join("my-shop");
    assert_eq!(
        files(&app),
        [
            ".gitignore",
            "Cargo.toml",
            "Ferrule.toml",
            "README.md",
            "src/lib.rs",
            "src/main.rs",
            "src/notes.rs",
            "src/server.rs",
            "style/app.css",
            "tests/app.rs",
        ]
    );
    for f in files(&app) {
        let text = read(app.join(&f));
        assert!(
            !text.contains("{{") && !text.contains("{%"),
            "{f} still has template syntax"
        );
    }
    let cargo = read(app.join("Cargo.toml"));
    assert!(cargo.contains("name = \"my-shop\""));
    let runtime = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../runtime")
        .canonicalize()
        .unwrap();
    assert!(
        cargo.contains(&format!(
            "ferrule = {{ path = {:?}",
            runtime.display().to_string()
        )),
        "depends on this checkout: {cargo}"
    );
    let main = read(app.join("src/main.rs"));
    assert!(
        main.contains("\"sqlite://my_shop.sqlite3?mode=rwc\""),
        "{main}"
    );
    assert!(main.contains("my_shop::app(db)"));
    assert!(read(app.join("src/server.rs")).contains("site_options(\"my_shop\")"));
    std::fs::remove_dir_all(&parent).unwrap();
}

#[test]
fn a_postgres_app_defaults_to_postgres_and_says_how_to_create_the_database() {
    let parent = scratch("postgres");
    let out = ferrule(
        &[
            "new",
            "ledger",
            "--db",
            "postgres",
            "--path",
            parent.to_str().unwrap(),
        ],
        Path::new("/"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let main = read(parent.join("ledger/src/main.rs"));
    assert!(
        main.contains("\"postgres://postgres@127.0.0.1:5432/ledger\""),
        "{main}"
    );
    assert!(read(parent.join("ledger/README.md")).contains("createdb ledger"));
    std::fs::remove_dir_all(&parent).unwrap();
}

#[test]
fn bad_names_fail_with_a_reason_and_write_nothing() {
    let parent = scratch("bad");
    for (name, why) in [
        ("my shop", "not allowed"),
        ("Shop", "lowercase"),
        ("fn", "keyword"),
    ] {
        let out = ferrule(&["new", name], &parent);
        assert!(!out.status.success(), "{name} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{name}: {err}");
    }
    assert!(files(&parent).is_empty(), "nothing half-written");
    std::fs::remove_dir_all(&parent).unwrap();
}

#[test]
fn an_existing_non_empty_directory_is_left_alone() {
    let parent = scratch("exists");
    std::fs::create_dir_all(parent.join("shop")).unwrap();
    std::fs::write(parent.join("shop/notes.txt"), "mine").unwrap();
    let out = ferrule(&["new", "shop"], &parent);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert_eq!(files(&parent.join("shop")), ["notes.txt"]);
    assert_eq!(read(parent.join("shop/notes.txt")), "mine");
    std::fs::remove_dir_all(&parent).unwrap();
}

#[test]
fn doctor_flags_an_app_whose_wasm_bindgen_differs_from_the_tools() {
    let app = scratch("doctor");
    std::fs::write(
        app.join("Cargo.lock"),
        "version = 4\n\n[[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.999\"\n",
    )
    .unwrap();
    let out = ferrule(&["doctor"], &app);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("[FAIL] wasm-bindgen"), "{text}");
    assert!(
        text.contains("cargo update -p wasm-bindgen --precise"),
        "{text}"
    );
    std::fs::write(
        app.join("Cargo.lock"),
        "version = 4\n\n[[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.130\"\n",
    )
    .unwrap();
    let out = ferrule(&["doctor"], &app);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[ok  ] wasm-bindgen"), "{text}");
    std::fs::remove_dir_all(&app).unwrap();
}
