// What every signal an admin, a supervisor or a terminal can send means to
// fugue-server (docs/operations.md, "Signals"). No catchable signal whose
// default action ends the process is left at that default: each one drains,
// reloads or reports, so none can leave the socket and pid file behind.
//
// Left at their defaults, on purpose:
// - SIGKILL, SIGSTOP: cannot be caught.
// - SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT: a crash (or a request for a core
//   dump); Node and V8 rely on them. The next start replaces the stale socket.
// - SIGPROF: V8's CPU profiler samples with it (--cpu-prof); a listener would break it.
// - SIGPIPE: Node ignores it (writes fail with EPIPE instead).
// - SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT: job control stops and resumes the process.
// - SIGCHLD, SIGWINCH, SIGURG: ignored by default.
// - Real-time signals (SIGRTMIN+n): Node cannot listen for them by name.

/** What the daemon does on a signal. */
export type SignalAction =
  | 'drain' // graceful shutdown; a second one forces it
  | 'reload' // re-read the configuration and apply what can change live
  | 'status'; // log one status line and carry on

export const SIGNAL_ACTIONS: Readonly<Record<string, SignalAction>> = {
  SIGTERM: 'drain', // supervisors' stop
  SIGINT: 'drain', // Ctrl-C
  SIGQUIT: 'drain', // Ctrl-\ (nginx's graceful quit)
  SIGHUP: 'reload', // systemctl reload; also a closing terminal
  // SIGUSR1 would otherwise start Node's inspector on 127.0.0.1:9229, where
  // any local user could attach and run code as this user. Many operators send
  // it to mean "reopen logs": logs go to stdout, so there is nothing to reopen.
  SIGUSR1: 'status',
  SIGUSR2: 'status',
  SIGALRM: 'drain',
  SIGVTALRM: 'drain',
  SIGXCPU: 'drain', // soft CPU-time limit reached: leave before the hard one kills
  SIGXFSZ: 'drain', // file-size limit reached
  SIGPWR: 'drain', // power failure (UPS daemons)
  SIGSTKFLT: 'drain',
  SIGIO: 'drain', // also SIGPOLL: the same number on Linux
  SIGTRAP: 'drain',
  SIGSYS: 'drain',
};

/** The signals the daemon listens for, in table order. */
export const MANAGED_SIGNALS = Object.keys(SIGNAL_ACTIONS) as NodeJS.Signals[];
