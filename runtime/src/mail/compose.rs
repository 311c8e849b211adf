//! A message written as the app's Fluent texts, in the reader's language.
//!
//! Message `name` is three texts of the catalogues: `<name>-subject`, `<name>-text` (the plain
//! part) and, optionally, `<name>-html` (the HTML part's body; the arguments put in it are
//! escaped). Without `<name>-html`, the HTML part is the text's paragraphs, its links made
//! clickable. An app rewords Ferrule's messages by giving texts of the same ids.

use fluent_bundle::FluentValue;

use crate::i18n::{Arg, Catalogues};

/// A composed message: its subject, plain text and HTML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    /// The subject line.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part, a whole document.
    pub html: String,
}

/// Message `name` in `language` (the default language's texts where it has none), with `args`.
///
/// ```
/// use ferrule::i18n::{Arg, Catalogues, Source};
///
/// let texts = "order-shipped-subject = Order { $order } shipped\n\
///              order-shipped-text = It left today: https://shop.example/orders/{ $order }\n";
/// let catalogues =
///     Catalogues::new(&["en".into()], &[Source { language: "en", name: "app.ftl", text: texts }])
///         .unwrap();
/// let mail = ferrule::mail::compose(&catalogues, "en", "order-shipped", &[("order", Arg::from(7))]);
/// assert_eq!(mail.subject, "Order 7 shipped");
/// assert!(mail.html.contains(r#"<a href="https://shop.example/orders/7">"#));
/// ```
pub fn compose(
    catalogues: &Catalogues,
    language: &str,
    name: &str,
    args: &[(&str, Arg)],
) -> Composed {
    let subject = catalogues.translate(language, &format!("{name}-subject"), args);
    let text = catalogues.translate(language, &format!("{name}-text"), args);
    let html_key = format!("{name}-html");
    let body = if catalogues.has(language, &html_key) {
        let escaped: Vec<(&str, Arg)> =
            args.iter().map(|(key, arg)| (*key, escaped(arg))).collect();
        catalogues.translate(language, &html_key, &escaped)
    } else {
        paragraphs(&text)
    };
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <title>{title}</title></head>\n\
         <body style=\"font-family: system-ui, sans-serif; line-height: 1.5; max-width: 40em\">\n\
         {body}\n</body></html>\n",
        lang = escape(language),
        title = escape(&subject),
    );
    Composed {
        subject,
        text,
        html,
    }
}

/// `arg` safe to put in HTML: text escaped, numbers as they are.
fn escaped(arg: &Arg) -> Arg {
    match &arg.0 {
        FluentValue::String(s) => Arg::from(escape(s)),
        _ => arg.clone(),
    }
}

/// The plain text as HTML: a `<p>` per paragraph, its line breaks kept, links clickable.
fn paragraphs(text: &str) -> String {
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let lines: Vec<String> = p.lines().map(linked).collect();
            format!("<p>{}</p>", lines.join("<br>\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One line escaped, each `http(s)://` word made a link.
fn linked(line: &str) -> String {
    line.split(' ')
        .map(|word| {
            let link = word.trim_end_matches(['.', ',', ')']);
            if link.starts_with("https://") || link.starts_with("http://") {
                let rest = &word[link.len()..];
                format!("<a href=\"{0}\">{0}</a>{1}", escape(link), escape(rest))
            } else {
                escape(word)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` with the characters HTML gives a meaning escaped.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Source;

    fn catalogues(text: &'static str) -> Catalogues {
        Catalogues::new(
            &["en".to_owned(), "fr".to_owned()],
            &[Source {
                language: "en",
                name: "app.ftl",
                text,
            }],
        )
        .unwrap()
    }

    #[test]
    fn arguments_are_escaped_in_the_html_part_and_not_in_the_text() {
        let c = catalogues(
            "hi-subject = Hi { $name }\nhi-text = Hi { $name }, see https://x.example/a?b=1&c=2.\n",
        );
        let mail = compose(&c, "fr", "hi", &[("name", Arg::from("<b>Ada</b>"))]);
        assert_eq!(mail.subject, "Hi <b>Ada</b>");
        assert_eq!(mail.text, "Hi <b>Ada</b>, see https://x.example/a?b=1&c=2.");
        assert!(mail.html.contains("<p>Hi &lt;b&gt;Ada&lt;/b&gt;, see"));
        assert!(mail.html.contains(
            "<a href=\"https://x.example/a?b=1&amp;c=2\">https://x.example/a?b=1&amp;c=2</a>."
        ));
        assert!(
            mail.html
                .contains("<title>Hi &lt;b&gt;Ada&lt;/b&gt;</title>")
        );
    }

    #[test]
    fn an_html_text_of_its_own_gets_escaped_arguments() {
        let c = catalogues(
            "hi-subject = Hi\nhi-text = Hi { $name }\nhi-html = <h1>Hi { $name }</h1>\n",
        );
        let mail = compose(&c, "en", "hi", &[("name", Arg::from("<i>x</i>"))]);
        assert!(mail.html.contains("<h1>Hi &lt;i&gt;x&lt;/i&gt;</h1>"));
    }
}
