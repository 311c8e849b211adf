//! Reading an `impl` block: which methods are handlers, of which kind, with which payload.

use proc_macro2::TokenStream;
use syn::spanned::Spanned;
use syn::{
    Attribute, Expr, FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, LitStr, Pat, ReturnType, Type,
    Visibility,
};

use crate::options::{GuardCall, HandlerOptions};

/// What a handler is registered as.
pub(crate) enum Kind {
    /// `async fn(&mut self, ctx: C, ..payload)`: a socket event.
    Event { ctx: Box<Type> },
    /// `async fn(&mut self, ctx, files)` marked `#[upload]`: runs for `POST /_upload`.
    Upload { max_bytes: Option<Box<Expr>> },
    /// `async fn(bg: Background<Self>, ..payload)` marked `#[background]`: runs detached.
    Background,
}

/// One payload parameter: a field of the action.
pub(crate) struct Field {
    pub(crate) name: Ident,
    pub(crate) ty: Type,
    /// `#[serde(..)]` attributes written on the parameter, moved to the field.
    pub(crate) serde: Vec<Attribute>,
}

/// One handler method.
pub(crate) struct Handler {
    pub(crate) method: Ident,
    /// The action type: the method's name in upper camel case, or `#[action(Name)]`.
    pub(crate) action: Ident,
    pub(crate) vis: Visibility,
    pub(crate) docs: Vec<Attribute>,
    pub(crate) kind: Kind,
    pub(crate) fields: Vec<Field>,
    pub(crate) output: ReturnType,
    pub(crate) guards: Vec<GuardCall>,
    /// The pages it loads (`#[on_load]`).
    pub(crate) loads: Vec<LitStr>,
    /// The tables whose changes run it again (`#[on_change]`).
    pub(crate) watches: Vec<LitStr>,
}

/// The `impl` block, read: its handlers, and the block with Ferrule's attributes removed.
pub(crate) struct StateImpl {
    pub(crate) self_ident: Ident,
    pub(crate) block: ItemImpl,
    pub(crate) handlers: Vec<Handler>,
}

const SHAPE: &str = "a handler is `async fn name(&mut self, ctx: EventContext, ..payload)`; \
                     helpers that are not handlers go in another `impl` block";

impl StateImpl {
    pub(crate) fn parse(item: TokenStream) -> syn::Result<Self> {
        let mut block: ItemImpl = syn::parse2(item).map_err(|e| {
            syn::Error::new(
                e.span(),
                "`#[ferrule::state]` goes on an `impl YourState { … }` block",
            )
        })?;
        if let Some((_, path, _)) = &block.trait_ {
            return Err(syn::Error::new_spanned(
                path,
                "`#[ferrule::state]` goes on the state's own `impl` block, not a trait impl",
            ));
        }
        if !block.generics.params.is_empty() {
            return Err(syn::Error::new_spanned(
                &block.generics,
                "a state with `#[ferrule::state]` has no generic parameters",
            ));
        }
        let self_ident = match &*block.self_ty {
            Type::Path(p) if p.qself.is_none() => p
                .path
                .segments
                .last()
                .filter(|s| s.arguments.is_empty())
                .map(|s| s.ident.clone()),
            _ => None,
        }
        .ok_or_else(|| {
            syn::Error::new_spanned(
                &block.self_ty,
                "expected the state's type name, e.g. `impl CartState`",
            )
        })?;

        let mut handlers: Vec<Handler> = Vec::new();
        for item in &mut block.items {
            let ImplItem::Fn(f) = item else { continue };
            let options = HandlerOptions::take(&mut f.attrs)?;
            if f.sig.asyncness.is_none() {
                refuse_sync_handler(f, &options)?;
                continue;
            }
            let handler = read_handler(f, options)?;
            if let Some(other) = handlers.iter().find(|h| h.action == handler.action) {
                return Err(syn::Error::new(
                    handler.method.span(),
                    format!(
                        "handlers `{}` and `{}` would both be the action `{}`: rename one",
                        other.method, handler.method, handler.action
                    ),
                ));
            }
            if handler.action == self_ident {
                return Err(syn::Error::new(
                    handler.method.span(),
                    format!(
                        "handler `{}` would make an action named like the state itself",
                        handler.method
                    ),
                ));
            }
            handlers.push(handler);
        }
        Ok(Self {
            self_ident,
            block,
            handlers,
        })
    }
}

/// A method without `async` is a helper, unless it looks like a handler that lost its `async`.
fn refuse_sync_handler(f: &ImplItemFn, options: &HandlerOptions) -> syn::Result<()> {
    let takes_context = f.sig.inputs.iter().nth(1).is_some_and(|arg| match arg {
        FnArg::Typed(t) => last_segment_is(&t.ty, "EventContext"),
        FnArg::Receiver(_) => false,
    });
    if options.any() || takes_context {
        return Err(syn::Error::new_spanned(
            f.sig.fn_token,
            format!("handler `{}` must be an `async fn`", f.sig.ident),
        ));
    }
    Ok(())
}

fn last_segment_is(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == name))
}

fn read_handler(f: &mut ImplItemFn, options: HandlerOptions) -> syn::Result<Handler> {
    let sig = &f.sig;
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            format!(
                "handler `{}` has no generic parameters (its action is one concrete type)",
                sig.ident
            ),
        ));
    }
    let method = sig.ident.clone();
    let action = options
        .action
        .clone()
        .unwrap_or_else(|| Ident::new(&upper_camel(&method.to_string()), method.span()));
    let mut inputs = f.sig.inputs.iter_mut();
    let kind = if options.background.is_some() {
        match inputs.next() {
            Some(FnArg::Typed(_)) => Kind::Background,
            Some(FnArg::Receiver(r)) => {
                return Err(syn::Error::new_spanned(
                    r,
                    "a `#[background]` handler takes `bg: Background<Self>` instead of `self`: it runs detached from the state",
                ));
            }
            None => {
                return Err(syn::Error::new_spanned(
                    &f.sig,
                    "a `#[background]` handler takes `bg: Background<Self>` first",
                ));
            }
        }
    } else {
        match inputs.next() {
            Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_some() => {}
            Some(other) => {
                return Err(syn::Error::new_spanned(
                    other,
                    format!("handler `{method}` takes `&mut self` first: {SHAPE}"),
                ));
            }
            None => {
                return Err(syn::Error::new_spanned(
                    &f.sig,
                    format!("handler `{method}` takes `&mut self` first: {SHAPE}"),
                ));
            }
        }
        let ctx = match inputs.next() {
            Some(FnArg::Typed(t)) => t.ty.clone(),
            _ => {
                return Err(syn::Error::new_spanned(
                    &f.sig,
                    format!(
                        "handler `{method}` takes an `EventContext` after `&mut self`: {SHAPE}"
                    ),
                ));
            }
        };
        match options.upload {
            Some(max_bytes) => Kind::Upload {
                max_bytes: max_bytes.map(Box::new),
            },
            None => Kind::Event { ctx },
        }
    };

    let mut fields = Vec::new();
    for arg in inputs {
        let FnArg::Typed(t) = arg else { continue };
        let name = match &*t.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "a payload parameter is a plain name: it becomes a field of the action",
                ));
            }
        };
        if matches!(&*t.ty, Type::Reference(_) | Type::ImplTrait(_)) {
            return Err(syn::Error::new_spanned(
                &t.ty,
                "a payload parameter is an owned type (`String`, not `&str`): the action carries it",
            ));
        }
        let (serde, others): (Vec<_>, Vec<_>) =
            t.attrs.drain(..).partition(|a| a.path().is_ident("serde"));
        t.attrs = others;
        fields.push(Field {
            name,
            ty: (*t.ty).clone(),
            serde,
        });
    }
    if let Kind::Upload { .. } = kind
        && fields.len() != 1
    {
        return Err(syn::Error::new(
            f.sig.inputs.span(),
            "an `#[upload]` handler takes `&mut self`, an `EventContext` and the files: `files: Vec<UploadedFile>`",
        ));
    }
    if let Kind::Upload { .. } = kind {
        // The files come from the request body, not from the action.
        fields.clear();
    }

    let loads = match options.loads {
        Some((paths, span)) => {
            if !matches!(kind, Kind::Event { .. }) || !fields.is_empty() {
                return Err(syn::Error::new(
                    span,
                    "an `#[on_load]` handler is an event handler without a payload: `async fn load(&mut self, ctx: EventContext)` (read the page's query with `ctx.query`)",
                ));
            }
            paths
        }
        None => Vec::new(),
    };
    let watches = match options.watches {
        Some((tables, span)) => {
            if !matches!(kind, Kind::Event { .. }) || !fields.is_empty() {
                return Err(syn::Error::new(
                    span,
                    "an `#[on_change]` handler is an event handler without a payload: `async fn load(&mut self, ctx: EventContext)`",
                ));
            }
            tables
        }
        None => Vec::new(),
    };
    Ok(Handler {
        action,
        method,
        vis: f.vis.clone(),
        docs: f
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("doc"))
            .cloned()
            .collect(),
        kind,
        fields,
        output: f.sig.output.clone(),
        guards: options.guards,
        loads,
        watches,
    })
}

/// `add_item` → `AddItem`; a raw identifier loses its `r#`.
pub(crate) fn upper_camel(snake: &str) -> String {
    snake
        .trim_start_matches("r#")
        .split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}
