// Talking to the process supervisor (systemd's sd_notify protocol). Imports
// nothing from the rest of src/: the CLI wires it to the server's lifecycle.
export { monotonicUsec, NOTIFY_ENV_KEYS, Notifier } from './notify.js';
export type { NotifierOptions, NotifierState, NotifierStats, NotifyLogger } from './notify.js';
export { parseNotifySocket, parseWatchdog, watchdogIntervalMs } from './notify-env.js';
export type { NotifyAddress } from './notify-env.js';
export { koffiSenderFactory, NATIVE_MISSING, NATIVE_UNLOADABLE } from './unix-datagram.js';
export type { DatagramSender, SenderFactory } from './unix-datagram.js';
export { listenFds, LISTEN_ENV_KEYS, LISTEN_FDS_START, FD_NAME } from './listen-fds.js';
export type { ListenFdsResult } from './listen-fds.js';
