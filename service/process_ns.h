/* Where a process id means something: this host's boot and this PID
 * namespace. The service gives its own to its workers beside its pid; a
 * worker on another host (a cluster's node) or in another PID namespace
 * does not look that pid up, where it would name nothing or a stranger. */
#ifndef SVC_PROCESS_NS_H
#define SVC_PROCESS_NS_H

#include <stddef.h>

/* "<boot id>:<pid namespace inode>" of the calling process into buf. 0,
 * or SVC_EIO when /proc cannot tell (buf is then ""). */
int svc_process_ns(char *buf, size_t len);

#endif
