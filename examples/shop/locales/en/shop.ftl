# The shop's texts in English, the default language.
cart-added = Added { $name } ({ $price }) to your cart.
