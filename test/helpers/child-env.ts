// The environment for a child process that runs this project's code (the CLI,
// fuguectl). Under c8 (npm test), NODE_V8_COVERAGE names the directory each
// Node process writes its coverage to; a helper that gives a child an explicit
// environment must pass it on, or the child's code counts as never run. Without
// it set, the environment is returned unchanged.

/** `env` plus NODE_V8_COVERAGE from this process, when it is set and `env` does not set it. */
export function childEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const dir = process.env.NODE_V8_COVERAGE;
  return dir === undefined || Object.hasOwn(env, 'NODE_V8_COVERAGE') ? env : { ...env, NODE_V8_COVERAGE: dir };
}

/** systemd-socket-activate passes on only the variables it is given with -E: the same, as its arguments. */
export function childEnvArgs(): string[] {
  const dir = process.env.NODE_V8_COVERAGE;
  return dir === undefined ? [] : ['-E', `NODE_V8_COVERAGE=${dir}`];
}
