//! The runtime's own state: `auth_state`, the user of the tab, kept in step by the bridge.

use crate::auth::AuthState;

impl super::State for AuthState {
    const TIER: Option<crate::Tier> = Some(crate::Tier::AuthOnly);
    fn handlers(h: &mut super::Handlers<Self>) {
        h.on("refresh", Self::refresh);
    }
}

impl AuthState {
    /// Re-reads the user; the bridge ships the difference.
    async fn refresh(&mut self, ctx: crate::EventContext) {
        *self = Self::of(&ctx.user());
    }
}
