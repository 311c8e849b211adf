//! The handler API as the compiler sees it: what `#[ferrule::state]` and `Handlers::action`
//! accept, and the errors a user gets for what they refuse (trybuild compiles each file in
//! `handler_api/` and compares the messages with the `.stderr` beside it).

#[test]
fn the_handler_api_compiles_what_it_should_and_explains_what_it_refuses() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/handler_api/pass_*.rs");
    cases.compile_fail("tests/handler_api/fail_*.rs");
}
