# {{project-name}}'s texts in English, the default language (the first of `languages` in
# Ferrule.toml). Pages use them with `ferrule::t!("key")`, `ferrule::t!("key", name = value)`.
# A key missing in another language is taken from here (and logged once).

## Header
nav-notes = Notes
{% if auth %}nav-admin = Admin
{% endif %}not-found = Not found

## Home page
home-title = Welcome to {{project-name}}
home-lead = A Ferrule app: pages rendered on the server and kept live over a socket, with sessions{% if auth %}, accounts{% endif %} and a database already wired. Everything here is ordinary code in src/ to read and change.
counter-title = The counter
counter-increment = Increment
counter-help = A click sends Increment over the socket, through the app's middleware, to CounterState::increment in src/counter.rs; the new count comes back as a change to the state. The tenant middleware in src/server.rs tagged the last click:
next-title = What to try next
next-notes = the app's own table (src/notes.rs), a sea-orm entity with its migration.
{% if auth %}next-register = Register
next-private = then open the private page (src/auth.rs): the private_pages middleware sends anonymous visitors to log in.
{% endif %}next-scaffold = Run `ferrule generate scaffold product name:string price:i64` for a table with a page of its own.
next-edit = Edit src/counter.rs while `ferrule dev` runs: this page reloads itself with the change.
next-language = Switch the language in the header: texts come from locales/<language>/app.ftl.

## Notes
notes-title = Notes
notes-new = New note
notes-add = Add
{% if auth %}
## Account pages
log-in-title = Log in
register-title = Register
private-title = Private
private-text = Only logged-in users see this page.
email-title = Your e-mail address
forgot-title = Forgot your password?
forgot-text = Give the e-mail address of your account: a link to set a new password goes to it.
reset-title = Set a new password
{% endif %}
