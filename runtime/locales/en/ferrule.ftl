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

## Password reset
ferrule-forgot-password = Forgot your password?
ferrule-send-reset-link = Send me a link
ferrule-new-password = New password
ferrule-set-password = Set my password
ferrule-enter-email = Enter your e-mail address.
ferrule-reset-asked = If an account has this address, a link to set a new password is on its way.
ferrule-link-invalid = This link is invalid or has expired. Ask for a new one.
ferrule-password-reset-done = Your new password is set: log in with it.

## Mail (`ferrule::mail::compose`: `<name>-subject`, `<name>-text`, optionally `<name>-html`)
ferrule-mail-password-reset-subject = Set a new password for { $username }
ferrule-mail-password-reset-text =
    Hello { $username },

    Someone, probably you, asked to set a new password for your account on { $host }. This link lets you choose one; it works once, for { $hours } hours:

    { $link }

    If you did not ask for it, ignore this message: your password stays as it is.

## E-mail confirmation and change
ferrule-change-email = Change my e-mail address
ferrule-new-email = New e-mail address
ferrule-current-password = Current password
ferrule-password-wrong = The password is wrong.
ferrule-change-asked = A link to confirm the new address is on its way to it.
ferrule-confirm-first = Check your mail: follow the link in it to confirm your address, then log in.
ferrule-not-confirmed = Confirm your e-mail address first: a new link is on its way to it.
ferrule-email-confirmed = Your e-mail address is confirmed.
ferrule-address-taken = This address is used by another account.
ferrule-mail-confirm-email-subject = Confirm your e-mail address
ferrule-mail-confirm-email-text =
    Hello { $username },

    Please confirm that { $email } is your address by following this link; it works once, for { $hours } hours:

    { $link }

    If you did not ask for it, ignore this message: nothing changes.
