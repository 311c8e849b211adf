greeting = Hallo, { $name }!
ferrule-language-name = Deutsch
