// A node test reporter that names each test file that ran at least one test, one
// `ferrule-ran: <file>` line each at the end. `cargo xtask` reads them: a test file that loads
// no test (renamed, emptied, every test skipped) must fail the run, not shrink it.
export default async function* filesReporter(source) {
  const ran = new Set();
  for await (const event of source) {
    // A skipped or to-do test reports as passed; it ran nothing.
    const passed = event.type === 'test:pass' && !event.data.skip && !event.data.todo;
    if ((passed || event.type === 'test:fail') && event.data.file) {
      ran.add(event.data.file);
    }
  }
  for (const file of [...ran].sort()) {
    yield `ferrule-ran: ${file}\n`;
  }
}
