# Ferrule's own texts. An app rewords one by giving a message of the same id in its own
# catalogue (locales/<language>/*.ftl).

## Account forms and the header's account menu
ferrule-username = Username
ferrule-password = Password
ferrule-email = E-mail
ferrule-log-in = Log in
ferrule-log-out = Log out
ferrule-register = Register
ferrule-create-account = Create my account

## Language switcher
ferrule-language = Language
# This language's name in itself, for the switcher.
ferrule-language-name = English
ferrule-change-language = Change

## Connection indicator and toasts
ferrule-connecting = Connecting…
ferrule-live = Live
ferrule-reconnecting = Offline, reconnecting (attempt { $attempt })
ferrule-dismiss = Dismiss

## Account messages and errors
ferrule-wrong-credentials = Wrong username or password.
ferrule-logged-in = You are logged in as { $username }.
ferrule-logged-out = You are logged out.
ferrule-welcome = Welcome, { $username }: your account is ready.
ferrule-log-in-first = Please log in first.
ferrule-old-password-wrong = The old password is wrong.
ferrule-password-changed = Your password was changed.
ferrule-throttled = Too many failed logins. Try again in a few minutes.
ferrule-busy = The server is busy checking passwords. Try again in a moment.
ferrule-forbidden = You do not have permission to do this.
ferrule-generic-error = Something went wrong. Please try again.
ferrule-unavailable = The service is temporarily unavailable, please retry.
ferrule-unknown-language = This site is not available in that language.
ferrule-too-many-requests = Too many requests. Please wait a moment.
ferrule-in-use = This is still in use elsewhere: change or delete what points at it first.

## Forms (the messages of `ferrule::forms::rules`)
ferrule-invalid-form = Please correct the marked fields.
ferrule-required = Required.
ferrule-max-chars = At most { $max } characters.
ferrule-whole-number = Enter a whole number.
ferrule-number = Enter a number.
ferrule-date = Enter a date as YYYY-MM-DD.
ferrule-datetime = Enter a date and time as YYYY-MM-DD HH:MM.
