//! What `ferrule::locales!()` writes: every `locales/<language>/*.ftl` of the calling crate,
//! read at compile time, as a slice of `ferrule::i18n::Source`.

use std::path::{Path, PathBuf};

use proc_macro2::TokenStream;
use quote::quote;
use syn::LitStr;

pub(crate) fn locales(input: TokenStream) -> syn::Result<TokenStream> {
    let relative = if input.is_empty() {
        "locales".to_owned()
    } else {
        syn::parse2::<LitStr>(input)?.value()
    };
    let manifest = std::env::var("CARGO_MANIFEST_DIR").map_err(|_| {
        syn::Error::new(
            proc_macro2::Span::call_site(),
            "CARGO_MANIFEST_DIR is not set",
        )
    })?;
    let root = Path::new(&manifest).join(&relative);
    let error = |message: String| syn::Error::new(proc_macro2::Span::call_site(), message);
    let mut languages: Vec<PathBuf> = std::fs::read_dir(&root)
        .map_err(|e| error(format!("no catalogues at `{}`: {e}", root.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_dir())
        .collect();
    languages.sort();
    let mut sources = Vec::new();
    for dir in languages {
        let language = dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| error(format!("`{}` is not a UTF-8 name", dir.display())))?
            .to_owned();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| error(format!("`{}`: {e}", dir.display())))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|x| x == "ftl"))
            .collect();
        files.sort();
        for file in files {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let path = file
                .to_str()
                .ok_or_else(|| error(format!("`{}` is not a UTF-8 path", file.display())))?
                .to_owned();
            // include_str! makes cargo rebuild when a catalogue changes.
            sources.push(quote! {
                ::ferrule::i18n::Source {
                    language: #language,
                    name: #name,
                    text: ::core::include_str!(#path),
                }
            });
        }
    }
    Ok(quote! {
        {
            const SOURCES: &[::ferrule::i18n::Source] = &[#(#sources),*];
            SOURCES
        }
    })
}
