# Les textes de Ferrule. Une application en reformule un en donnant un message du même
# identifiant dans son propre catalogue (locales/<langue>/*.ftl).

## Formulaires de compte et menu du compte dans l'en-tête
ferrule-username = Nom d'utilisateur
ferrule-password = Mot de passe
ferrule-email = Adresse e-mail
ferrule-log-in = Se connecter
ferrule-log-out = Se déconnecter
ferrule-register = Créer un compte
ferrule-create-account = Créer mon compte

## Choix de la langue
ferrule-language = Langue
# Le nom de cette langue en elle-même, pour le choix de la langue.
ferrule-language-name = Français
ferrule-change-language = Changer

## Indicateur de connexion et notifications
ferrule-connecting = Connexion…
ferrule-live = En direct
ferrule-reconnecting = Hors ligne, reconnexion (essai { $attempt })
ferrule-dismiss = Fermer

## Messages et erreurs du compte
ferrule-wrong-credentials = Nom d'utilisateur ou mot de passe incorrect.
ferrule-logged-in = Vous êtes connecté en tant que { $username }.
ferrule-logged-out = Vous êtes déconnecté.
ferrule-welcome = Bienvenue, { $username } : votre compte est prêt.
ferrule-log-in-first = Connectez-vous d'abord.
ferrule-old-password-wrong = L'ancien mot de passe est incorrect.
ferrule-password-changed = Votre mot de passe a été changé.
ferrule-throttled = Trop de connexions échouées. Réessayez dans quelques minutes.
ferrule-busy = Le serveur vérifie trop de mots de passe. Réessayez dans un instant.
ferrule-forbidden = Vous n'avez pas la permission de faire ceci.
ferrule-generic-error = Une erreur s'est produite. Veuillez réessayer.
ferrule-unavailable = Le service est momentanément indisponible, veuillez réessayer.
ferrule-unknown-language = Ce site n'est pas disponible dans cette langue.
ferrule-too-many-requests = Trop de requêtes. Patientez un instant.
ferrule-in-use = C'est encore utilisé ailleurs : modifiez ou supprimez d'abord ce qui y renvoie.

## Formulaires (les messages de `ferrule::forms::rules`)
ferrule-invalid-form = Corrigez les champs signalés.
ferrule-required = Obligatoire.
ferrule-max-chars = { $max } caractères au plus.
ferrule-whole-number = Saisissez un nombre entier.
ferrule-number = Saisissez un nombre.
ferrule-date = Saisissez une date au format AAAA-MM-JJ.
ferrule-datetime = Saisissez une date et une heure au format AAAA-MM-JJ HH:MM.

## Password reset
ferrule-forgot-password = Mot de passe oublié ?
ferrule-send-reset-link = M’envoyer un lien
ferrule-new-password = Nouveau mot de passe
ferrule-set-password = Enregistrer mon mot de passe
ferrule-enter-email = Saisissez votre adresse e-mail.
ferrule-reset-asked = Si un compte a cette adresse, un lien pour choisir un nouveau mot de passe est en route.
ferrule-link-invalid = Ce lien n’est pas valide ou a expiré. Demandez-en un nouveau.
ferrule-password-reset-done = Votre nouveau mot de passe est enregistré : connectez-vous avec.

## Mail
ferrule-mail-password-reset-subject = Nouveau mot de passe pour { $username }
ferrule-mail-password-reset-text =
    Bonjour { $username },

    Quelqu’un, sans doute vous, a demandé un nouveau mot de passe pour votre compte sur { $host }. Ce lien vous permet d’en choisir un ; il sert une fois, pendant { $hours } heures :

    { $link }

    Si vous ne l’avez pas demandé, ignorez ce message : votre mot de passe reste le même.

## E-mail confirmation and change
ferrule-change-email = Changer mon adresse e-mail
ferrule-new-email = Nouvelle adresse e-mail
ferrule-current-password = Mot de passe actuel
ferrule-password-wrong = Le mot de passe est faux.
ferrule-change-asked = Un lien pour confirmer la nouvelle adresse lui a été envoyé.
ferrule-confirm-first = Consultez vos e-mails : suivez le lien reçu pour confirmer votre adresse, puis connectez-vous.
ferrule-not-confirmed = Confirmez d’abord votre adresse e-mail : un nouveau lien vous a été envoyé.
ferrule-email-confirmed = Votre adresse e-mail est confirmée.
ferrule-address-taken = Cette adresse est utilisée par un autre compte.
ferrule-mail-confirm-email-subject = Confirmez votre adresse e-mail
ferrule-mail-confirm-email-text =
    Bonjour { $username },

    Confirmez que { $email } est bien votre adresse en suivant ce lien ; il sert une fois, pendant { $hours } heures :

    { $link }

    Si vous ne l’avez pas demandé, ignorez ce message : rien ne change.
