//! Guards: who may run a handler or reach a route.
//!
//! On events, attach them at registration: `h.on("pay", Self::pay).login_required()`. A guard
//! that fails for an anonymous user redirects to the login URL with `next`; one that fails for
//! a logged-in user shows an error toast. On HTTP, wrap routes with [`require`], or protect whole
//! areas with [`login_required_everywhere`].

use axum::response::IntoResponse;

use super::CurrentUser;
use crate::middleware::{self, Named, Next, Request, Response};

/// A condition on the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// Any logged-in user.
    LoginRequired,
    /// A user holding this permission code.
    Permission(String),
    /// A member of this group.
    Group(String),
    /// A staff user.
    Staff,
    /// A superuser.
    Superuser,
    /// A user who confirmed their e-mail address (see the `email_verification` setting).
    EmailVerified,
}

/// How a guard failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// Nobody is logged in: send them to log in.
    Login,
    /// Logged in, but not allowed.
    Forbidden,
}

impl Guard {
    /// Checks `user`.
    pub fn check(&self, user: &CurrentUser) -> Result<(), Denied> {
        let Some(u) = user.user() else {
            return Err(Denied::Login);
        };
        let ok = match self {
            Self::LoginRequired => true,
            Self::Permission(p) => u.has_perm(p),
            Self::Group(g) => u.in_group(g) || u.is_superuser,
            Self::Staff => u.is_staff,
            Self::Superuser => u.is_superuser,
            Self::EmailVerified => u.email_verified,
        };
        if ok { Ok(()) } else { Err(Denied::Forbidden) }
    }
}

/// `login_url?next=path` (the path percent-encoded).
pub fn login_redirect(login_url: &str, next: &str) -> String {
    let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
    format!("{login_url}?next={next}")
}

/// 303 See Other: the browser follows with a GET whatever the request was (a form post to a
/// guarded path included), as the auth forms' own redirects do.
fn redirect(to: &str) -> Response {
    http::Response::builder()
        .status(http::StatusCode::SEE_OTHER)
        .header(http::header::LOCATION, to)
        .body(axum::body::Body::empty())
        .unwrap_or_default()
}

/// What the user sees when a guard forbids them.
pub const FORBIDDEN_MESSAGE: &str = "You do not have permission to do this.";

/// The answer to a failed guard for a request to `path`.
pub(crate) fn denial(
    denied: Denied,
    login_url: &str,
    path: &str,
) -> Result<Response, crate::Error> {
    match denied {
        Denied::Login => Ok(redirect(&login_redirect(login_url, path))),
        Denied::Forbidden => Err(crate::Error::permission_denied(FORBIDDEN_MESSAGE)),
    }
}

/// An axum middleware function that enforces `guard` on the routes it wraps:
/// `.route_layer(axum::middleware::from_fn(ferrule::auth::guard::require(Guard::Staff, "/login")))`.
pub fn require(
    guard: Guard,
    login_url: &'static str,
) -> impl Fn(Request, axum::middleware::Next) -> std::pin::Pin<Box<dyn Future<Output = Response> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    move |req: Request, next: axum::middleware::Next| {
        let guard = guard.clone();
        Box::pin(async move {
            let user = req
                .extensions()
                .get::<CurrentUser>()
                .cloned()
                .unwrap_or_default();
            match guard.check(&user) {
                Ok(()) => next.run(req).await,
                Err(d) => match denial(d, login_url, req.uri().path()) {
                    Ok(resp) => resp,
                    Err(e) => e.into_response(),
                },
            }
        })
    }
}

/// reflex-django's `LoginRequiredEverywhereMiddleware`: anonymous users are sent to `login_url`
/// from every path except `public` ones (exact match, or a prefix ending in `/`) and Ferrule's
/// own `/_auth/` endpoints. On events it redirects the client the same way.
pub fn login_required_everywhere(public: &[&str], login_url: &str) -> Named {
    let public: Vec<String> = public.iter().map(|s| (*s).to_owned()).collect();
    let login_url = login_url.to_owned();
    middleware::from_fn("login_required", move |req: Request, next: Next| {
        let public = public.clone();
        let login_url = login_url.clone();
        async move {
            let path = req.uri().path();
            let open = path == login_url
                || path.starts_with("/_auth/")
                || public
                    .iter()
                    .any(|p| path == p || (p.ends_with('/') && path.starts_with(p.as_str())));
            let anonymous = !req
                .extensions()
                .get::<CurrentUser>()
                .is_some_and(CurrentUser::is_authenticated);
            if anonymous && !open {
                let to = login_redirect(&login_url, path);
                return Ok(redirect(&to));
            }
            next.run(req).await
        }
    })
}

/// Anonymous users are sent to `login_url` (303, with `next`) from every path under one of
/// `prefixes` (`/private` covers `/private` and `/private/...`); other paths are open. Named
/// `name` in the chain. It runs on events too, where the redirect reaches the client as
/// `_redirect`, so a protected page is protected whichever way it is reached.
pub fn login_required_under(name: &'static str, prefixes: &[&str], login_url: &str) -> Named {
    let prefixes: Vec<String> = prefixes.iter().map(|s| (*s).to_owned()).collect();
    let login_url = login_url.to_owned();
    middleware::from_fn(name, move |req: Request, next: Next| {
        let guarded = prefixes.iter().any(|p| under(req.uri().path(), p));
        let login_url = login_url.clone();
        async move {
            let anonymous = !req
                .extensions()
                .get::<CurrentUser>()
                .is_some_and(CurrentUser::is_authenticated);
            if guarded && anonymous {
                return Ok(redirect(&login_redirect(&login_url, req.uri().path())));
            }
            next.run(req).await
        }
    })
}

/// `path` is `prefix` or below it (`/privateer` is not under `/private`).
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix.trim_end_matches('/'))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::User;

    fn user(perms: &[&str], groups: &[&str], staff: bool) -> CurrentUser {
        CurrentUser::from(User {
            id: 1,
            username: "u".into(),
            email: None,
            language: None,
            email_verified: false,
            is_active: true,
            is_staff: staff,
            is_superuser: false,
            groups: groups.iter().map(|s| s.to_string()).collect(),
            permissions: perms.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn guards_check_the_user() {
        let anon = CurrentUser::Anonymous;
        assert_eq!(Guard::LoginRequired.check(&anon), Err(Denied::Login));
        let u = user(&["shop.refund"], &["editors"], false);
        assert_eq!(Guard::Permission("shop.refund".into()).check(&u), Ok(()));
        assert_eq!(
            Guard::Permission("shop.delete".into()).check(&u),
            Err(Denied::Forbidden)
        );
        assert_eq!(Guard::Group("editors".into()).check(&u), Ok(()));
        assert_eq!(Guard::Staff.check(&u), Err(Denied::Forbidden));
        assert_eq!(Guard::Staff.check(&user(&[], &[], true)), Ok(()));
        // Staff is not enough for a superuser's page; a superuser passes.
        assert_eq!(
            Guard::Superuser.check(&user(&[], &[], true)),
            Err(Denied::Forbidden)
        );
        let CurrentUser::Authenticated(staff) = user(&[], &[], true) else {
            unreachable!()
        };
        let root = CurrentUser::from(User {
            is_superuser: true,
            ..(*staff).clone()
        });
        assert_eq!(Guard::Superuser.check(&root), Ok(()));
        assert_eq!(Guard::EmailVerified.check(&root), Err(Denied::Forbidden));
        let confirmed = CurrentUser::from(User {
            email_verified: true,
            ..(*staff).clone()
        });
        assert_eq!(Guard::EmailVerified.check(&confirmed), Ok(()));
        assert_eq!(Guard::EmailVerified.check(&anon), Err(Denied::Login));
    }

    #[test]
    fn prefixes_cover_the_path_and_below_only() {
        assert!(under("/private", "/private"));
        assert!(under("/private/x", "/private/"));
        assert!(!under("/privateer", "/private"));
        assert!(!under("/", "/private"));
    }

    #[test]
    fn next_is_encoded() {
        assert_eq!(login_redirect("/login", "/a b?c"), "/login?next=%2Fa+b%3Fc");
    }
}
