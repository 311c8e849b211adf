//! `ferrule new` as a user runs it: the binary, a temporary directory, and what lands on disk.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{files, scratch};

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
            "locales/en/app.ftl",
            "locales/fr/app.ftl",
            "src/auth.rs",
            "src/counter.rs",
            "src/lib.rs",
            "src/main.rs",
            "src/notes.rs",
            "src/server.rs",
            "style/app.css",
            "tests/app.rs",
            "tests/common/mod.rs",
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
            "ferrule = {{ package = \"ferrule-web\", path = {:?}",
            runtime.display().to_string()
        )),
        "depends on this checkout: {cargo}"
    );
    let main = read(app.join("src/main.rs"));
    assert!(main.contains("my_shop::app(db)"), "{main}");
    let server = read(app.join("src/server.rs"));
    assert!(
        server.contains("\"sqlite://my_shop.sqlite3?mode=rwc\""),
        "{server}"
    );
    assert!(server.contains("site_options(\"my_shop\")"));

    // A git repository with everything in one first commit, and the next step said.
    let log = Command::new("git")
        .args(["log", "--format=%s"])
        .current_dir(&app)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&log.stdout).trim(),
        "A new Ferrule app (ferrule new)"
    );
    let status = Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(&app)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), "", "all committed");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("&& ferrule dev"), "{said}");
    std::fs::remove_dir_all(&parent).unwrap();
}

#[test]
fn no_git_leaves_the_app_out_of_git() {
    let parent = scratch("nogit");
    let out = ferrule(&["new", "plain", "--no-git"], &parent);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(parent.join("plain/Cargo.toml").is_file());
    assert!(!parent.join("plain/.git").exists());
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
    let server = read(parent.join("ledger/src/server.rs"));
    assert!(
        server.contains("\"postgres://postgres@127.0.0.1:5432/ledger\""),
        "{server}"
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

#[test]
fn no_auth_leaves_out_the_account_pages() {
    let parent = scratch("noauth");
    let out = ferrule(&["new", "kiosk", "--no-auth"], &parent);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app = parent.join("kiosk");
    assert!(!app.join("src/auth.rs").exists());
    let lib = read(app.join("src/lib.rs"));
    assert!(!lib.contains("auth::") && !lib.contains("/login"), "{lib}");
    let server = read(app.join("src/server.rs"));
    assert!(!server.contains("login_required"), "{server}");
    assert!(!read(app.join("src/notes.rs")).contains("login_required"));
    for f in files(&app) {
        let text = read(app.join(&f));
        assert!(!text.contains("{%"), "{f} still has template syntax");
    }
    std::fs::remove_dir_all(&parent).unwrap();
}

/// Every file of `dir` with its text: to show a refused command changed nothing.
fn snapshot(dir: &Path) -> Vec<(String, String)> {
    files(dir)
        .into_iter()
        .map(|f| {
            let text = read(dir.join(&f));
            (f, text)
        })
        .collect()
}

#[test]
fn generate_writes_the_files_and_says_what_it_did() {
    let parent = scratch("gen");
    assert!(ferrule(&["new", "shop"], &parent).status.success());
    let app = parent.join("shop");
    let out = ferrule(
        &[
            "generate",
            "scaffold",
            "BlogPost",
            "title:string",
            "body:text",
            "stars:i32",
        ],
        &app,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "created src/blog_post.rs",
        "created tests/blog_posts.rs",
        "updated src/lib.rs",
        "updated src/server.rs",
        "ferrule migrate",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    let lib = read(app.join("src/lib.rs"));
    assert!(lib.contains("pub mod blog_post;"));
    assert!(lib.contains("<Route path=path!(\"/blog_posts\") view=blog_post::BlogPostsPage/>"));
    let server = read(app.join("src/server.rs"));
    assert!(server.contains(".state::<crate::blog_post::BlogPostsState>()"));
    assert!(server.contains("Box::new(crate::blog_post::server::CreateBlogPosts),"));
    let module = read(app.join("src/blog_post.rs"));
    assert!(module.contains("pub stars: i32,"), "{module}");
    assert!(!module.contains("{{") && !module.contains("{%"));
    std::fs::remove_dir_all(&parent).unwrap();
}

#[test]
fn bad_generate_input_fails_with_a_reason_and_changes_nothing() {
    let parent = scratch("genbad");
    assert!(ferrule(&["new", "shop"], &parent).status.success());
    let app = parent.join("shop");
    assert!(
        ferrule(&["generate", "state", "cart"], &app)
            .status
            .success()
    );
    let before = snapshot(&app);
    for (args, why) in [
        (
            &["generate", "scaffold", "product", "price:money"][..],
            "unknown field type `money`",
        ),
        (
            &["generate", "scaffold", "product", "price"][..],
            "has no type",
        ),
        (&["generate", "scaffold", "product"][..], "needs fields"),
        (
            &["generate", "scaffold", "product", "a:i64", "a:bool"][..],
            "listed twice",
        ),
        (
            &["generate", "scaffold", "product", "id:i64"][..],
            "already",
        ),
        (
            &["generate", "state", "cart"][..],
            "src/cart.rs already exists",
        ),
        (&["generate", "page", "9lives"][..], "snake_case"),
        (&["generate", "page", "type"][..], "keyword"),
        (
            &["generate", "page", "about", "x:i64"][..],
            "only `ferrule generate scaffold` takes fields",
        ),
    ] {
        let out = ferrule(args, &app);
        assert!(!out.status.success(), "{args:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    }
    assert_eq!(snapshot(&app), before, "nothing was written");

    // A marker the user deleted: the message names it and the file, and nothing is written.
    let server = read(app.join("src/server.rs"));
    let edited: String = server
        .lines()
        .filter(|l| !l.contains("ferrule:migrations"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(app.join("src/server.rs"), &edited).unwrap();
    let before = snapshot(&app);
    let out = ferrule(&["generate", "scaffold", "product", "name:string"], &app);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("src/server.rs has no `// ferrule:migrations` line"),
        "{err}"
    );
    assert_eq!(snapshot(&app), before, "nothing half-written");

    let out = ferrule(&["generate", "page", "about"], &parent);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("made by `ferrule new`"),
        "outside an app"
    );
    std::fs::remove_dir_all(&parent).unwrap();
}

#[test]
fn an_app_with_a_long_name_is_laid_out_as_cargo_fmt_would() {
    let parent = scratch("long");
    let name = "a-rather-long-application-name-for-the-warehouse-team";
    for db in ["sqlite", "postgres"] {
        let dir = parent.join(db);
        std::fs::create_dir_all(&dir).unwrap();
        let out = ferrule(&["new", name, "--db", db], &dir);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let app = dir.join(name);
        let rs: Vec<PathBuf> = files(&app)
            .into_iter()
            .filter(|f| f.ends_with(".rs"))
            .map(|f| app.join(f))
            .collect();
        let check = Command::new("rustfmt")
            .args(["--check", "--edition", "2024"])
            .args(&rs)
            .output()
            .expect("rustfmt");
        assert!(
            check.status.success(),
            "{db}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
    std::fs::remove_dir_all(&parent).unwrap();
}

#[test]
fn a_missing_wasm_toolchain_is_named_with_its_fix() {
    if Path::new("/usr/lib/rustlib/src/rust/library").is_dir() {
        common::skipped("Debian's wasm route is installed here, so nothing is missing");
        return;
    }
    let parent = scratch("nowasm");
    assert!(ferrule(&["new", "shop"], &parent).status.success());
    // Forcing the Debian route on a machine without it: as if rustup had no wasm32 target.
    let out = Command::new(env!("CARGO_BIN_EXE_ferrule"))
        .arg("build")
        .current_dir(parent.join("shop"))
        .env("FERRULE_WASM_MODE", "debian")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rustup target add wasm32-unknown-unknown"),
        "{err}"
    );
    std::fs::remove_dir_all(&parent).unwrap();
}
