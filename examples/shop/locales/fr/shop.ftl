# Les textes de la boutique en français.
cart-added = { $name } ({ $price }) ajouté à votre panier.
