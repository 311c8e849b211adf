greeting = Hello, { $name }!
only-english = Only in English
