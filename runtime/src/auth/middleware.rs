//! The authentication middleware: the user of every request and event, from its session.

use crate::middleware::{self, Named, Next, Request, Response};

use tower_sessions::Session;

use super::errors::{AuthError, is_store_outage};
use super::{AUTH_MIDDLEWARE, Auth, CurrentUser};

/// Resolves the user of every request and event from its session, eagerly, and makes [`Auth`]
/// reachable for login and logout. Runs in the auth tier after the session middleware.
pub fn auth_middleware(auth: Auth) -> Named {
    middleware::from_fn(AUTH_MIDDLEWARE, move |mut req: Request, next: Next| {
        let auth = auth.clone();
        async move {
            let user_phase = crate::metrics::Phase::User.start();
            let user = match req.extensions().get::<Session>().cloned() {
                Some(session) => match auth.user_of(&session).await {
                    Ok(user) => user,
                    // The store could not be reached: an outage, not a logout.
                    Err(AuthError::Session(e)) if is_store_outage(&e) => {
                        return Err(crate::Error::unavailable(format!("session store: {e}")));
                    }
                    // A session that does not load (tampered, garbage) is simply anonymous.
                    Err(AuthError::Session(e)) => {
                        tracing::debug!(error = %e, "session did not load; anonymous");
                        CurrentUser::Anonymous
                    }
                    Err(e) => return Err(e.into()),
                },
                None => CurrentUser::Anonymous,
            };
            user_phase.end();
            if let Some(language) = user.user().and_then(|u| u.language.clone()) {
                req.extensions_mut()
                    .insert(crate::i18n::PreferredLanguage(language));
            }
            req.extensions_mut().insert(user);
            req.extensions_mut().insert(auth);
            let resp: Response = next.run(req).await?;
            Ok(resp)
        }
    })
    .auth_tier()
}
