//! The admin's page (feature `ui`): the models the user may see, a model's list with search,
//! filters, ordering, pages and bulk delete, a row's form with its messages per field and a
//! confirmed delete, and the row's log. Everything it shows is [`AdminState`]; everything it
//! does is an event of the admin's state, so it works over the socket like any page.

use std::collections::BTreeSet;

use leptos::prelude::*;
use serde_json::{Value, json};

use super::form::AdminForm;
use super::{AdminState, ListPage, LogEntry};
use crate::protocol::StateName;
use crate::ui::{Emitter, use_emit, use_state};

/// Emits the admin's event `handler` with `payload`; its id (`None` on the server).
pub(super) fn send(emit: Emitter, handler: &str, payload: Value) -> Option<u64> {
    emit.send_named(format!("{}.{handler}", AdminState::state_name()), payload)
}

/// The whole admin: put it on the route of the `admin_path` setting, behind
/// `ferrule::ui::provide`. It asks for the models the user may see when it is shown.
#[component]
pub fn AdminPage() -> impl IntoView {
    let state = use_state::<AdminState>();
    let emit = use_emit();
    Effect::new(move |_| {
        send(emit, "index", json!({}));
    });
    let models = state.field(|s| s.models.clone());
    let list = state.field(|s| s.list.clone());
    let object = state.field(|s| s.object.clone());
    let log = state.field(|s| s.log.clone());
    // `index` has answered (it sets the path) and left nothing this user may manage.
    let nothing = state.field(|s| !s.path.is_empty() && s.models.is_empty());
    // Each part erased to `AnyView`: nested whole, the page's type is too deep for the
    // compiler's default recursion limit in the app that routes to it.
    let nav = view! {
        <nav class="ferrule-admin-models">
            <For
                each=move || models.get()
                key=|m| m.model.clone()
                children=move |m| {
                    let model = m.model.clone();
                    view! {
                        <button on:click=move |_| {
                            send(emit, "list", json!({"model": model}));
                        }>{m.label}</button>
                    }
                }
            />
        </nav>
    }
    .into_any();
    view! {
        <div class="ferrule-admin">
            <h1>"Admin"</h1>
            {nav}
            <Show when=move || nothing.get()>
                <p class="ferrule-admin-empty">"There is nothing here you may manage yet."</p>
            </Show>
            {move || list.get().map(|l| {
                // Named as the tabs name it.
                let label = models
                    .with(|ms| ms.iter().find(|m| m.model == l.model).map(|m| m.label.clone()))
                    .unwrap_or_else(|| l.model.clone());
                view! { <AdminList list=l label=label/> }.into_any()
            })}
            {move || object.get().map(|o| view! { <AdminForm object=o/> }.into_any())}
            {move || {
                let entries = log.get();
                (!entries.is_empty()).then(|| view! { <AdminLog entries=entries/> }.into_any())
            }}
        </div>
    }
    .into_any()
}

/// One page of a model's rows, under the model's name `label`.
#[component]
fn AdminList(list: ListPage, label: String) -> impl IntoView {
    let emit = use_emit();
    let model = StoredValue::new(list.model.clone());
    let query = StoredValue::new(list.query.clone());
    let search = RwSignal::new(list.query.search.clone());
    let filters = RwSignal::new(list.query.filters.clone());
    let chosen = RwSignal::new(BTreeSet::<String>::new());
    let confirming = RwSignal::new(false);
    // Lists again with what the inputs hold, at `page` in `ordering`.
    let ask = move |page: u64, ordering: String| {
        send(
            emit,
            "list",
            json!({"model": model.get_value(), "search": search.get_untracked(),
                   "filters": filters.get_untracked(), "ordering": ordering, "page": page}),
        );
    };
    let ordering = move || query.with_value(|q| q.ordering.clone());
    let (page, pages, total) = (list.page, list.pages, list.total);
    let searchable = !list.search_fields.is_empty();
    let filter_inputs = list
        .filter_fields
        .iter()
        .map(|name| {
            let name = name.clone();
            let key = name.clone();
            view! {
                <label class="ferrule-admin-filter">
                    {name.clone()}
                    <input
                        prop:value=move || filters.with(|f| f.get(&key).cloned().unwrap_or_default())
                        on:change=move |ev| {
                            let value = event_target_value(&ev);
                            filters.update(|f| {
                                if value.is_empty() {
                                    f.remove(&name);
                                } else {
                                    f.insert(name.clone(), value);
                                }
                            });
                        }
                    />
                </label>
            }
        })
        .collect_view();
    let headers = list
        .columns
        .iter()
        .map(|column| {
            let column = column.clone();
            let shown = column.clone();
            view! {
                <th>
                    <button on:click=move |_| {
                        let next = match ordering() == column {
                            true => format!("-{column}"),
                            false => column.clone(),
                        };
                        ask(1, next);
                    }>{shown}</button>
                </th>
            }
        })
        .collect_view();
    let rows = list
        .rows
        .into_iter()
        .map(|row| {
            let id = row.id.clone();
            let picked = id.clone();
            let open = id.clone();
            let cells = row
                .cells
                .into_iter()
                .map(|c| view! { <td>{c.unwrap_or_default()}</td> })
                .collect_view();
            view! {
                <tr>
                    <td>
                        <input
                            type="checkbox"
                            aria-label=format!("Select row {id}")
                            prop:checked=move || chosen.with(|c| c.contains(&id))
                            on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                chosen.update(|c| {
                                    if on {
                                        c.insert(picked.clone());
                                    } else {
                                        c.remove(&picked);
                                    }
                                });
                            }
                        />
                    </td>
                    {cells}
                    <td>
                        <button on:click=move |_| {
                            send(emit, "open", json!({"model": model.get_value(), "id": open}));
                        }>"Edit"</button>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="ferrule-admin-list">
            <h2>{label}</h2>
            <form on:submit=move |ev| {
                ev.prevent_default();
                ask(1, ordering());
            }>
                {searchable.then(|| view! {
                    <input type="search" placeholder="Search" aria-label="Search" bind:value=search/>
                })}
                {filter_inputs}
                <button type="submit">"Apply"</button>
            </form>
            <button on:click=move |_| {
                send(emit, "new", json!({"model": model.get_value()}));
            }>"Add"</button>
            <table>
                <thead><tr><th></th>{headers}<th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
            <p class="ferrule-admin-pages">
                // Braced: a bare `>=` would end the tag.
                <button disabled={page <= 1} on:click=move |_| ask(page - 1, ordering())>"Previous"</button>
                {format!("Page {page} of {pages} ({total} rows)")}
                <button disabled={page >= pages} on:click=move |_| ask(page + 1, ordering())>"Next"</button>
            </p>
            <Show
                when=move || confirming.get()
                fallback=move || view! {
                    <button
                        disabled=move || chosen.with(BTreeSet::is_empty)
                        on:click=move |_| confirming.set(true)
                    >"Delete selected"</button>
                }
            >
                <p class="ferrule-admin-confirm">
                    {move || format!("Delete {} rows for good?", chosen.with(BTreeSet::len))}
                    <button on:click=move |_| {
                        let ids: Vec<String> = chosen.get_untracked().into_iter().collect();
                        send(emit, "delete_many", json!({"model": model.get_value(), "ids": ids}));
                        chosen.set(BTreeSet::new());
                        confirming.set(false);
                    }>"Delete"</button>
                    <button on:click=move |_| confirming.set(false)>"Keep them"</button>
                </p>
            </Show>
        </section>
    }
    .into_any()
}

/// Unix seconds as a UTC date and time to the minute: `2026-12-07 17:30 UTC`.
///
/// Worked out here rather than with the `time` crate: this page is part of the browser's
/// client, and one line of the log is not worth `time`'s formatting code in every app's wasm.
fn when(at: i64) -> String {
    let (days, secs) = (at.div_euclid(86_400), at.rem_euclid(86_400));
    // Days since 1970-01-01 to a proleptic Gregorian date, by 400-year eras from 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (hour, minute) = (secs / 3600, secs % 3600 / 60);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

/// A row's log, newest first.
#[component]
fn AdminLog(entries: Vec<LogEntry>) -> impl IntoView {
    let items = entries
        .into_iter()
        .map(|e| {
            let changes = e
                .changes
                .into_iter()
                .map(|c| {
                    let old = c.old.unwrap_or_else(|| "∅".to_owned());
                    let new = c.new.unwrap_or_else(|| "∅".to_owned());
                    view! { <li>{format!("{}: {old} → {new}", c.field)}</li> }
                })
                .collect_view();
            view! {
                <li>
                    {format!("{} {} ", e.username, e.action)}
                    <time>{when(e.at)}</time>
                    <ul>{changes}</ul>
                </li>
            }
        })
        .collect_view();
    view! {
        <section class="ferrule-admin-log">
            <h3>"History"</h3>
            <ol>{items}</ol>
        </section>
    }
}

#[cfg(all(test, feature = "ssr"))]
pub(super) mod tests {
    use super::*;
    use crate::admin::{Change, ListQuery, RowView};

    pub(in crate::admin) fn render(page: impl FnOnce() -> AnyView) -> String {
        Owner::new().with(|| {
            crate::ui::provide();
            page().to_html()
        })
    }

    #[test]
    fn a_list_shows_its_columns_rows_and_where_it_is_among_the_pages() {
        let list = ListPage {
            model: "books".into(),
            columns: vec!["title".into(), "pages".into()],
            search_fields: vec!["title".into()],
            filter_fields: vec!["in_print".into()],
            rows: vec![RowView {
                id: "7".into(),
                cells: vec![Some("Hamlet".into()), None],
            }],
            total: 7,
            page: 3,
            pages: 3,
            page_size: 3,
            query: ListQuery {
                ordering: "title".into(),
                page: 3,
                ..ListQuery::default()
            },
        };
        let html = render(|| view! { <AdminList list=list label="books".to_owned()/> }.into_any());
        assert!(html.contains("<h2>books</h2>"), "{html}");
        assert!(html.contains("<td>Hamlet</td>"), "{html}");
        assert!(html.contains(r#"type="search""#), "{html}");
        assert!(html.contains("in_print"), "a filter input: {html}");
        assert!(html.contains("Page 3 of 3 (7 rows)"), "{html}");
        let next = html.split("(7 rows)").nth(1).unwrap_or_default();
        let next = next.split("</button>").next().unwrap_or_default();
        assert!(
            next.contains("<button disabled") && next.ends_with(">Next"),
            "no page after the last: {html}"
        );
        assert!(!html.contains("ask("), "no code shown as text: {html}");
    }

    #[test]
    fn log_times_are_utc_dates() {
        assert_eq!(when(0), "1970-01-01 00:00 UTC");
        assert_eq!(when(951_782_400 + 3_660), "2000-02-29 01:01 UTC");
        assert_eq!(when(1_796_665_200), "2026-12-07 17:40 UTC");
        assert_eq!(when(-60), "1969-12-31 23:59 UTC");
    }

    #[test]
    fn the_log_says_who_did_what_and_each_value_before_and_after() {
        let entries = vec![LogEntry {
            at: 1,
            user_id: Some(2),
            username: "editor".into(),
            model: "books".into(),
            object_id: "1".into(),
            action: "change".into(),
            changes: vec![Change {
                field: "title".into(),
                old: Some("Dune".into()),
                new: Some("Dune Messiah".into()),
            }],
        }];
        let html = render(|| view! { <AdminLog entries=entries/> }.into_any());
        assert!(html.contains("editor change"), "{html}");
        assert!(html.contains("1970-01-01 00:00 UTC"), "{html}");
        assert!(html.contains("title: Dune → Dune Messiah"), "{html}");
    }
}
