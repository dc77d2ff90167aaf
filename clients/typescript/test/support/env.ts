// Where the live tests' servers are, and their credentials: set by tests/client/test_typescript.py.

/** The environment variable `name`; without it, an error naming it and how to run the tests. */
export function env(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run these tests through pytest tests/client/test_typescript.py`);
  }
  return value;
}
