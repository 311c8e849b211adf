# Les textes de {{project-name}} en français.

## En-tête
nav-notes = Notes
{% if auth %}nav-admin = Administration
{% endif %}not-found = Page introuvable

## Accueil
home-title = Bienvenue dans {{project-name}}
home-lead = Une application Ferrule : des pages rendues par le serveur et tenues à jour par une socket, avec sessions{% if auth %}, comptes{% endif %} et base de données déjà branchés. Tout ici est du code ordinaire dans src/, à lire et à changer.
counter-title = Le compteur
counter-increment = Incrémenter
counter-help = Un clic envoie Increment par la socket, à travers le middleware de l'application, jusqu'à CounterState::increment dans src/counter.rs ; le nouveau total revient comme un changement de l'état. Le middleware tenant de src/server.rs a marqué le dernier clic :
next-title = Et ensuite
next-notes = la table de l'application (src/notes.rs), une entité sea-orm avec sa migration.
{% if auth %}next-register = Créer un compte
next-private = puis ouvrez la page privée (src/auth.rs) : le middleware private_pages envoie les visiteurs anonymes se connecter.
{% endif %}next-scaffold = Lancez `ferrule generate scaffold product name:string price:i64` pour une table avec sa propre page.
next-edit = Modifiez src/counter.rs pendant que `ferrule dev` tourne : cette page se recharge avec le changement.
next-language = Changez de langue dans l'en-tête : les textes viennent de locales/<langue>/app.ftl.

## Notes
notes-title = Notes
notes-new = Nouvelle note
notes-add = Ajouter
{% if auth %}
## Pages du compte
log-in-title = Connexion
register-title = Créer un compte
private-title = Page privée
private-text = Seuls les utilisateurs connectés voient cette page.
email-title = Votre adresse e-mail
forgot-title = Mot de passe oublié ?
forgot-text = Indiquez l’adresse e-mail de votre compte : un lien pour choisir un nouveau mot de passe y sera envoyé.
reset-title = Choisir un nouveau mot de passe
{% endif %}
