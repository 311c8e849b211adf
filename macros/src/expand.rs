//! What `#[ferrule::state]` writes: the actions and the state's name on both sides, the
//! methods and the `State` impl on the server.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::options::StateOptions;
use crate::parse::{Handler, Kind, StateImpl};

pub(crate) fn state(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let options = StateOptions::parse(args)?;
    let state = StateImpl::parse(item)?;
    let self_ident = &state.self_ident;
    let self_ty = &state.block.self_ty;

    let name = match &options.name {
        Some(name) => quote! {
            const NAME: ::core::option::Option<&'static str> = ::core::option::Option::Some(#name);
        },
        None => quote!(),
    };
    let actions = state.handlers.iter().map(|h| action(h, self_ty));

    let mut block = state.block.clone();
    block.attrs.push(syn::parse_quote!(#[cfg(feature = "ssr")]));
    block
        .items
        .extend(state.handlers.iter().filter_map(wrapper));

    let tier = options.tier.as_ref().map(|variant| {
        quote! {
            const TIER: ::core::option::Option<::ferrule::Tier> =
                ::core::option::Option::Some(::ferrule::Tier::#variant);
        }
    });
    let session_bound = options
        .session_bound
        .map(|b| quote!(const SESSION_BOUND: bool = #b;));
    let session_scoped = options.session_scoped.then(|| {
        quote!(
            const SESSION_SCOPED: bool = true;
        )
    });
    let registrations = state.handlers.iter().map(registration);
    let handlers_doc =
        format!("Registers the handlers of `{self_ident}`, as `#[ferrule::state]` wrote them.");

    Ok(quote! {
        impl ::ferrule::protocol::StateName for #self_ty {
            #name
        }

        #(#actions)*

        #block

        #[cfg(feature = "ssr")]
        impl ::ferrule::State for #self_ty {
            #tier
            #session_bound
            #session_scoped
            #[doc = #handlers_doc]
            #[allow(unused_variables)] // a state without handlers registers none
            fn handlers(handlers: &mut ::ferrule::Handlers<Self>) {
                #(#registrations)*
            }
        }
    })
}

/// The action type of one handler and its `Action` impl.
fn action(h: &Handler, self_ty: &syn::Type) -> TokenStream {
    let Handler {
        method,
        action,
        vis,
        docs,
        fields,
        ..
    } = h;
    let handler_name = method.to_string().trim_start_matches("r#").to_owned();
    let docs = if docs.is_empty() {
        let line = format!(" The action of handler `{handler_name}`.");
        quote!(#[doc = #line])
    } else {
        quote!(#(#docs)*)
    };
    let body = if fields.is_empty() {
        quote!(;)
    } else {
        // The fields are as visible as the handler, so an action can be built wherever it
        // can be named.
        let fields = fields.iter().map(|f| {
            let (name, ty, serde) = (&f.name, &f.ty, &f.serde);
            let doc = format!(" The handler's `{name}`.");
            quote! {
                #[doc = #doc]
                #(#serde)*
                #vis #name: #ty,
            }
        });
        quote!({ #(#fields)* })
    };
    quote! {
        #docs
        #[derive(::ferrule::__private::serde::Serialize, ::ferrule::__private::serde::Deserialize)]
        #[serde(crate = "::ferrule::__private::serde")]
        #[cfg_attr(not(feature = "ssr"), allow(dead_code))]
        #vis struct #action #body

        impl ::ferrule::protocol::Action for #action {
            type State = #self_ty;
            const HANDLER: &'static str = #handler_name;
        }
    }
}

/// The method of an event handler that takes its action and spreads it into the parameters.
fn wrapper(h: &Handler) -> Option<syn::ImplItem> {
    let Kind::Event { ctx } = &h.kind else {
        return None;
    };
    if h.fields.is_empty() {
        return None;
    }
    let Handler {
        method,
        action,
        fields,
        output,
        ..
    } = h;
    let wrapper = wrapper_ident(method);
    let names: Vec<_> = fields.iter().map(|f| &f.name).collect();
    Some(syn::parse_quote! {
        #[doc(hidden)]
        async fn #wrapper(&mut self, __ferrule_ctx: #ctx, __ferrule_action: #action) #output {
            let #action { #(#names),* } = __ferrule_action;
            self.#method(__ferrule_ctx, #(#names),*).await
        }
    })
}

/// The hidden method that takes a handler's action and calls the handler.
fn wrapper_ident(method: &syn::Ident) -> syn::Ident {
    format_ident!("__ferrule_{}", method.to_string().trim_start_matches("r#"))
}

/// The statement registering one handler with its guards.
fn registration(h: &Handler) -> TokenStream {
    let Handler {
        method,
        action,
        fields,
        guards,
        ..
    } = h;
    let guards = guards.iter().map(|g| &g.0);
    let handler_name = quote!(<#action as ::ferrule::protocol::Action>::HANDLER);
    match &h.kind {
        // Without parameters the handler takes no payload: whatever the event carries is left
        // to `ctx.form()` and the like, as with `Handlers::on`.
        Kind::Event { .. } if fields.is_empty() => {
            let loads = h.loads.iter().map(|path| quote!(.on_load(#path)));
            let watches = h.watches.iter().map(|table| quote!(.on_change(#table)));
            quote!(handlers.on(#handler_name, Self::#method) #(#guards)* #(#loads)* #(#watches)*;)
        }
        Kind::Event { .. } => {
            let wrapper = wrapper_ident(method);
            quote!(handlers.action(Self::#wrapper) #(#guards)*;)
        }
        Kind::Upload { max_bytes } => {
            let limit = max_bytes.as_ref().map(|n| quote!(.max_bytes(#n)));
            quote!(handlers.upload(#handler_name, Self::#method) #limit #(#guards)*;)
        }
        Kind::Background => {
            let names: Vec<_> = fields.iter().map(|f| &f.name).collect();
            let pattern = if names.is_empty() {
                quote!(#action)
            } else {
                quote!(#action { #(#names),* })
            };
            quote! {
                handlers.background(#handler_name, |bg, action: #action| {
                    let #pattern = action;
                    Self::#method(bg, #(#names),*)
                }) #(#guards)*;
            }
        }
    }
}
