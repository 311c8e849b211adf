greeting = Bonjour, { $name } !
