//! The arguments of `#[ferrule::state(..)]` and the attributes a handler may carry.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, Lit, LitStr, Meta, Token};

/// What `#[ferrule::state(name = .., tier = .., session_bound = .., scope = ..)]` says.
#[derive(Default)]
pub(crate) struct StateOptions {
    pub(crate) name: Option<LitStr>,
    /// The `ferrule::Tier` variant.
    pub(crate) tier: Option<TokenStream>,
    pub(crate) session_bound: Option<bool>,
    /// `scope = "session"`: one value for every tab of the session.
    pub(crate) session_scoped: bool,
}

impl StateOptions {
    pub(crate) fn parse(args: TokenStream) -> syn::Result<Self> {
        let mut options = Self::default();
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
        for meta in metas {
            let Meta::NameValue(nv) = &meta else {
                return Err(syn::Error::new_spanned(
                    &meta,
                    "expected `name = \"…\"`, `tier = \"…\"`, `scope = \"…\"` or `session_bound = …`",
                ));
            };
            let key = nv
                .path
                .get_ident()
                .map(|i| i.to_string())
                .unwrap_or_default();
            match key.as_str() {
                "name" => {
                    let name = lit_str(&nv.value)?;
                    if name.value().is_empty() || name.value().contains('.') {
                        return Err(syn::Error::new_spanned(
                            name,
                            "a state's name is not empty and has no `.` (events are `<state>.<handler>`)",
                        ));
                    }
                    options.name = Some(name);
                }
                "tier" => {
                    let tier = lit_str(&nv.value)?;
                    options.tier = Some(match tier.value().as_str() {
                        "full" => quote!(Full),
                        "auth_only" => quote!(AuthOnly),
                        "none" | "no_chain" => quote!(NoChain),
                        _ => {
                            return Err(syn::Error::new_spanned(
                                tier,
                                "unknown tier: expected \"full\", \"auth_only\" or \"none\"",
                            ));
                        }
                    });
                }
                "scope" => {
                    let scope = lit_str(&nv.value)?;
                    options.session_scoped = match scope.value().as_str() {
                        "session" => true,
                        "tab" => false,
                        _ => {
                            return Err(syn::Error::new_spanned(
                                scope,
                                "unknown scope: expected \"tab\" (the default) or \"session\"",
                            ));
                        }
                    };
                }
                "session_bound" => match &nv.value {
                    Expr::Lit(l) => match &l.lit {
                        Lit::Bool(b) => options.session_bound = Some(b.value),
                        other => {
                            return Err(syn::Error::new_spanned(
                                other,
                                "expected `true` or `false`",
                            ));
                        }
                    },
                    other => {
                        return Err(syn::Error::new_spanned(other, "expected `true` or `false`"));
                    }
                },
                _ => {
                    return Err(syn::Error::new_spanned(
                        &nv.path,
                        format!(
                            "unknown argument `{key}`: `#[ferrule::state]` takes `name`, `tier`, `scope` and `session_bound`"
                        ),
                    ));
                }
            }
        }
        Ok(options)
    }
}

fn lit_str(expr: &Expr) -> syn::Result<LitStr> {
    match expr {
        Expr::Lit(l) => match &l.lit {
            Lit::Str(s) => Ok(s.clone()),
            other => Err(syn::Error::new_spanned(other, "expected a string literal")),
        },
        other => Err(syn::Error::new_spanned(other, "expected a string literal")),
    }
}

/// A guard a handler attribute asks for, as the `Registered` method call that adds it.
pub(crate) struct GuardCall(pub(crate) TokenStream);

/// What the attributes of one handler say.
#[derive(Default)]
pub(crate) struct HandlerOptions {
    pub(crate) guards: Vec<GuardCall>,
    /// `#[upload]`, with its `max_bytes` if any.
    pub(crate) upload: Option<Option<Expr>>,
    pub(crate) background: Option<Span>,
    /// `#[action(Name)]`: the action type's name when the method's would clash with another
    /// type of the module (two states with a `load` handler each).
    pub(crate) action: Option<syn::Ident>,
    /// `#[on_load("/notes", ..)]`: the pages whose data this handler loads, with the span of
    /// the attribute for errors.
    pub(crate) loads: Option<(Vec<LitStr>, Span)>,
    /// `#[on_change("notes", ..)]`: the tables whose changes run this handler again, with the
    /// span of the attribute for errors.
    pub(crate) watches: Option<(Vec<LitStr>, Span)>,
}

/// The handler attributes this macro reads (and removes).
const KNOWN: &[&str] = &[
    "login_required",
    "permission",
    "group",
    "staff_required",
    "superuser_required",
    "upload",
    "background",
    "action",
    "on_load",
    "on_change",
];

impl HandlerOptions {
    /// Reads and removes Ferrule's attributes from `attrs`; others stay. An attribute that is
    /// one letter or two away from one of ours is refused with the right spelling, as it would
    /// otherwise guard nothing.
    pub(crate) fn take(attrs: &mut Vec<Attribute>) -> syn::Result<Self> {
        let mut options = Self::default();
        let mut kept = Vec::with_capacity(attrs.len());
        for attr in attrs.drain(..) {
            let Some((name, span)) = attr.path().get_ident().map(|i| (i.to_string(), i.span()))
            else {
                kept.push(attr);
                continue;
            };
            match name.as_str() {
                "login_required" | "staff_required" | "superuser_required" => {
                    attr.meta.require_path_only()?;
                    let method = syn::Ident::new(&name, span);
                    options.guards.push(GuardCall(quote!(.#method())));
                }
                "permission" | "group" => {
                    let value: LitStr = attr.parse_args().map_err(|_| {
                        syn::Error::new_spanned(&attr, format!("expected `#[{name}(\"…\")]`"))
                    })?;
                    let method = syn::Ident::new(&format!("{name}_required"), span);
                    options.guards.push(GuardCall(quote!(.#method(#value))));
                }
                "upload" => {
                    let mut max_bytes = None;
                    if !matches!(attr.meta, Meta::Path(_)) {
                        attr.parse_nested_meta(|meta| {
                            if meta.path.is_ident("max_bytes") {
                                max_bytes = Some(meta.value()?.parse::<Expr>()?);
                                Ok(())
                            } else {
                                Err(meta.error("`#[upload]` takes `max_bytes = …` only"))
                            }
                        })?;
                    }
                    options.upload = Some(max_bytes);
                }
                "action" => {
                    let name: syn::Ident = attr.parse_args().map_err(|_| {
                        syn::Error::new_spanned(&attr, "expected `#[action(TypeName)]`")
                    })?;
                    options.action = Some(name);
                }
                "on_load" => {
                    let paths = attr
                        .parse_args_with(Punctuated::<LitStr, Token![,]>::parse_terminated)
                        .map_err(|_| {
                            syn::Error::new_spanned(&attr, "expected `#[on_load(\"/path\", ..)]`")
                        })?;
                    if paths.is_empty() {
                        return Err(syn::Error::new_spanned(
                            &attr,
                            "`#[on_load]` names at least one page: `#[on_load(\"/notes\")]`",
                        ));
                    }
                    for path in &paths {
                        if !path.value().starts_with('/') {
                            return Err(syn::Error::new_spanned(
                                path,
                                "a page's path starts with `/`",
                            ));
                        }
                    }
                    options.loads = Some((paths.into_iter().collect(), span));
                }
                "on_change" => {
                    let tables = attr
                        .parse_args_with(Punctuated::<LitStr, Token![,]>::parse_terminated)
                        .map_err(|_| {
                            syn::Error::new_spanned(&attr, "expected `#[on_change(\"table\", ..)]`")
                        })?;
                    if tables.is_empty() {
                        return Err(syn::Error::new_spanned(
                            &attr,
                            "`#[on_change]` names at least one table: `#[on_change(\"notes\")]`",
                        ));
                    }
                    for table in &tables {
                        if table.value().trim().is_empty() {
                            return Err(syn::Error::new_spanned(table, "a table has a name"));
                        }
                    }
                    options.watches = Some((tables.into_iter().collect(), span));
                }
                "background" => {
                    attr.meta.require_path_only()?;
                    options.background = Some(span);
                }
                _ => {
                    if let Some(meant) = KNOWN.iter().find(|k| strsim::levenshtein(k, &name) <= 2) {
                        return Err(syn::Error::new_spanned(
                            attr.path(),
                            format!("unknown attribute `{name}`: did you mean `{meant}`?"),
                        ));
                    }
                    kept.push(attr);
                }
            }
        }
        *attrs = kept;
        if let (Some(_), Some(span)) = (&options.upload, options.background) {
            return Err(syn::Error::new(
                span,
                "a handler is `#[upload]` or `#[background]`, not both",
            ));
        }
        Ok(options)
    }

    /// Whether any of Ferrule's attributes were given (refused on methods that are not handlers).
    pub(crate) fn any(&self) -> bool {
        !self.guards.is_empty()
            || self.upload.is_some()
            || self.background.is_some()
            || self.action.is_some()
            || self.loads.is_some()
            || self.watches.is_some()
    }
}
