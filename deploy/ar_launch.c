/*  ar_launch: the local supervisor behind `./anyray up`.

    One process per replica, forked in tier order (mock, broker, actors, edge). Each child's
    stdout goes through a pseudo-terminal (so its stdio stays line-buffered) and its stderr
    through a pipe; the launcher reads both in one poll loop and writes every line prefixed
    with the child's label. Signals arrive on a signalfd, so SIGCHLD, SIGINT and SIGTERM are
    handled in the same loop as the output and the restart timers.
*/
#include "ar_launch.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <assert.h>

#define S_BACKOFF_MIN_MS 100
#define S_BACKOFF_MAX_MS 5000
#define S_HEALTHY_MS     10000
#define S_STOP_MS        5000  //  SIGTERM to SIGKILL, all tiers together (ANYRAY_STOP_TIMEOUT_MS)
#define S_STAGE_MS       1500  //  how long one tier may take before the next is stopped
#define S_LINGER_MS      500   //  keep reading a dead child's output this long
#define S_PROBE_MS       100   //  edge readiness probe interval
#define S_PROBE_WARN_MS  15000 //  say something if the edge is not up by then
#define S_LINE_MAX       4096
#define S_MAX_REPLICAS   64

//  The process table. Replicas are overridable by ANYRAY_REPLICAS_<NAME>, up to max.
//  Tiers start in increasing order and stop in decreasing order (edge first, broker last).
typedef struct {
    const char *name;   //  in labels, pid files and ANYRAY_REPLICAS_<NAME>
    const char *binary; //  relative to the bin dir
    int replicas;
    int max; //  one broker: replicas would fight over the same ipc endpoint
    int tier;
    bool demo_only;
} s_kind_t;

static const s_kind_t s_kinds[] = {
    {"mock", "tests/mock/anyray-mock-upstream", 1, 1, 0, true},
    {"broker", "broker/anyray-broker", 1, 1, 1, false},
    {"optimizer", "actors/optimizer/anyray-optimizer", 1, S_MAX_REPLICAS, 2, false},
    {"router", "actors/router/anyray-router", 1, S_MAX_REPLICAS, 2, false},
    {"provider", "actors/provider/anyray-provider", 1, S_MAX_REPLICAS, 2, false},
    {"spend", "actors/spend/anyray-spend", 1, S_MAX_REPLICAS, 2, false},
    {"edge", "edge/anyray-edge", 1, S_MAX_REPLICAS, 3, false},
};
#define S_KINDS    (sizeof (s_kinds) / sizeof (s_kinds[0]))
#define S_TIER_MAX 3

//  One output stream of one child generation; outlives the child by S_LINGER_MS so the last
//  lines of a crash are not lost.
typedef struct {
    int fd;
    int to;               //  STDOUT_FILENO or STDERR_FILENO
    int64_t linger_until; //  0 while the child lives
    char label[32];
    size_t len;
    char buf[S_LINE_MAX];
} s_stream_t;

typedef struct {
    const s_kind_t *kind;
    int index;
    char label[32]; //  "provider[0]"
    char binary[PATH_MAX];
    pid_t pid;          //  0 when not running
    int64_t started;    //  monotonic ms of the last fork
    int64_t restart_at; //  monotonic ms of the pending restart, 0 none
    int backoff_ms;     //  delay of the last restart, 0 none yet
    bool term_sent;
} s_child_t;

typedef struct {
    char bin_dir[PATH_MAX];
    char data_dir[PATH_MAX];
    char pid_dir[PATH_MAX];
    bool demo;
    int port;
    int demo_port;
    char demo_key[48];
    pid_t self_pid;
    sigset_t old_mask;
    int sigfd;
    int nullfd;
    s_child_t *children;
    size_t child_count;
    s_stream_t **streams;
    size_t stream_count;
    size_t stream_cap;
    bool banner_done;
    int64_t probe_at;
    int64_t probe_warn_at;
    bool stopping;
    int stop_ms;
    int64_t stop_deadline;
    int stop_tier; //  tier being stopped
    int64_t stage_until;
} s_launch_t;

static int64_t s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_log (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
static void s_log (const char *fmt, ...)
{
    char line[1024];
    int n = snprintf (line, sizeof line, "anyray-launch: ");
    va_list args;
    va_start (args, fmt);
    int m = vsnprintf (line + n, sizeof line - (size_t)n - 1, fmt, args);
    va_end (args);
    if (m < 0)
        return;
    size_t len = strlen (line);
    line[len++] = '\n';
    //  One write per line so it never interleaves with a child's line
    if (write (STDERR_FILENO, line, len) < 0) {
    }
}

//  --------------------------------------------------------------------------
//  Pure parts (self-tested)

int ar_launch_backoff (int prev_ms, int64_t ran_ms)
{
    if (prev_ms <= 0 || ran_ms >= S_HEALTHY_MS)
        return S_BACKOFF_MIN_MS;
    if (prev_ms >= S_BACKOFF_MAX_MS / 2)
        return S_BACKOFF_MAX_MS;
    return prev_ms * 2;
}

int ar_launch_replicas (const char *value, int def, int max)
{
    if (!value || !*value)
        return def;
    char *end;
    errno = 0;
    long n = strtol (value, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    if (errno || *end || end == value || n < 0 || n > max)
        return def;
    return (int)n;
}

int ar_launch_bin_dir (const char *exe, char *buf, size_t size)
{
    const char *slash = strrchr (exe, '/');
    size_t dir_len = slash ? (size_t)(slash - exe) : 0;
    if (!slash) {
        if (size < 2)
            return -1;
        strcpy (buf, ".");
        return 0;
    }
    if (dir_len == 0)
        dir_len = 1; //  "/anyray-launch" lives in "/"
    //  A build tree keeps us in <root>/deploy/
    const char *deploy = "/deploy";
    size_t dl = strlen (deploy);
    if (dir_len >= dl && memcmp (exe + dir_len - dl, deploy, dl) == 0) {
        dir_len -= dl;
        if (dir_len == 0)
            dir_len = 1;
    }
    if (dir_len + 1 > size)
        return -1;
    memcpy (buf, exe, dir_len);
    buf[dir_len] = 0;
    return 0;
}

//  --------------------------------------------------------------------------
//  Files and sockets

static int s_mkdir_p (const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf (tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir (tmp, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir (tmp, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

//  Written to a temp name and renamed, so a reader never sees half a pid.
static int s_write_pid (const char *dir, const char *name, int index, pid_t pid)
{
    char path[PATH_MAX + 64], tmp[PATH_MAX + 80];
    if (snprintf (path, sizeof path, "%s/%s-%d.pid", dir, name, index) >= (int)sizeof path ||
        snprintf (tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -1;
    FILE *file = fopen (tmp, "w");
    if (!file)
        return -1;
    fprintf (file, "%d\n", (int)pid);
    if (fclose (file) != 0 || rename (tmp, path) != 0) {
        unlink (tmp);
        return -1;
    }
    return 0;
}

static void s_remove_pid_files (const char *dir)
{
    DIR *handle = opendir (dir);
    if (!handle)
        return;
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        size_t len = strlen (entry->d_name);
        if (len > 4 && strcmp (entry->d_name + len - 4, ".pid") == 0)
            unlinkat (dirfd (handle), entry->d_name, 0);
    }
    closedir (handle);
}

//  True if something accepts TCP connections on 127.0.0.1:port.
static bool s_port_accepts (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t)port)};
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    bool ok = connect (fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    close (fd);
    return ok;
}

//  True if 127.0.0.1:port can be bound now (as the mock will, with SO_REUSEADDR).
static bool s_port_free (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t)port)};
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    bool ok = bind (fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    close (fd);
    return ok;
}

static int s_env_int (const char *name, int def, int min, int max)
{
    const char *value = getenv (name);
    if (!value || !*value)
        return def;
    char *end;
    errno = 0;
    long n = strtol (value, &end, 10);
    if (errno || *end || n < min || n > max) {
        s_log ("ignoring %s=%s (want %d..%d)", name, value, min, max);
        return def;
    }
    return (int)n;
}

//  Children inherit the raised limit: the edge and provider hold many sockets each.
static void s_raise_nofile (void)
{
    struct rlimit lim;
    if (getrlimit (RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max)
        return;
    rlim_t want = lim.rlim_max;
    lim.rlim_cur = want;
    if (setrlimit (RLIMIT_NOFILE, &lim) == 0)
        return;
    //  An unlimited hard limit is capped by fs.nr_open
    lim.rlim_cur = 1048576;
    if (lim.rlim_cur > want || setrlimit (RLIMIT_NOFILE, &lim) != 0)
        s_log ("could not raise RLIMIT_NOFILE: %s", strerror (errno));
}

//  --------------------------------------------------------------------------
//  Output streams

static void s_stream_emit (s_stream_t *stream)
{
    char line[S_LINE_MAX + 64];
    size_t len = stream->len;
    if (len && stream->buf[len - 1] == '\r')
        len--; //  defensive: a pty in cooked mode would add these
    int n = snprintf (line, sizeof line, "%-12s | ", stream->label);
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    memcpy (line + n, stream->buf, len);
    line[n + len] = '\n';
    if (write (stream->to, line, n + len + 1) < 0) {
    }
    stream->len = 0;
}

static void s_stream_close (s_stream_t *stream)
{
    if (stream->len)
        s_stream_emit (stream);
    if (stream->fd >= 0)
        close (stream->fd);
    stream->fd = -1;
}

//  Reads what is there; returns -1 at end of stream (EIO is how a pty says it).
static int s_stream_read (s_stream_t *stream)
{
    char chunk[4096];
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t got = read (stream->fd, chunk, sizeof chunk);
        if (got == 0)
            return -1;
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -1;
        }
        for (ssize_t i = 0; i < got; i++) {
            if (chunk[i] == '\n') {
                s_stream_emit (stream);
                continue;
            }
            if (stream->len == sizeof stream->buf)
                s_stream_emit (stream); //  a very long line goes out in pieces
            stream->buf[stream->len++] = chunk[i];
        }
    }
    return 0;
}

static int s_stream_add (s_launch_t *self, int fd, int to, const char *label)
{
    if (self->stream_count == self->stream_cap) {
        size_t cap = self->stream_cap ? self->stream_cap * 2 : 16;
        s_stream_t **grown = realloc (self->streams, cap * sizeof *grown);
        if (!grown) {
            close (fd);
            return -1;
        }
        self->streams = grown;
        self->stream_cap = cap;
    }
    s_stream_t *stream = calloc (1, sizeof *stream);
    if (!stream) {
        close (fd);
        return -1;
    }
    stream->fd = fd;
    stream->to = to;
    snprintf (stream->label, sizeof stream->label, "%s", label);
    fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
    self->streams[self->stream_count++] = stream;
    return 0;
}

//  Drops closed streams from the table.
static void s_streams_compact (s_launch_t *self)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->stream_count; i++) {
        if (self->streams[i]->fd >= 0)
            self->streams[kept++] = self->streams[i];
        else
            free (self->streams[i]);
    }
    self->stream_count = kept;
}

//  A dead child's streams are read a little longer, then closed whatever holds them open.
static void s_streams_linger (s_launch_t *self, const char *label, int64_t now)
{
    for (size_t i = 0; i < self->stream_count; i++) {
        s_stream_t *stream = self->streams[i];
        if (stream->linger_until == 0 && strcmp (stream->label, label) == 0) {
            stream->linger_until = now + S_LINGER_MS;
            if (s_stream_read (stream) < 0)
                s_stream_close (stream);
        }
    }
}

//  A pty for the child's stdout: C stdio line-buffers a terminal but fully buffers a pipe.
static int s_open_pty (int *master, int *slave)
{
    int fd = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char name[128];
    if (grantpt (fd) != 0 || unlockpt (fd) != 0 || ptsname_r (fd, name, sizeof name) != 0) {
        close (fd);
        return -1;
    }
    int sfd = open (name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (sfd < 0) {
        close (fd);
        return -1;
    }
    struct termios tio;
    if (tcgetattr (sfd, &tio) == 0) {
        cfmakeraw (&tio); //  no \n → \r\n, no echo
        tcsetattr (sfd, TCSANOW, &tio);
    }
    *master = fd;
    *slave = sfd;
    return 0;
}

//  --------------------------------------------------------------------------
//  Children

static int s_child_start (s_launch_t *self, s_child_t *child, int64_t now)
{
    int out_r = -1, out_w = -1, err_p[2];
    if (s_open_pty (&out_r, &out_w) != 0) {
        int out_p[2];
        if (pipe2 (out_p, O_CLOEXEC) != 0)
            return -1;
        out_r = out_p[0];
        out_w = out_p[1];
    }
    if (pipe2 (err_p, O_CLOEXEC) != 0) {
        close (out_r);
        close (out_w);
        return -1;
    }
    char port[16], replica[16];
    snprintf (port, sizeof port, "%d", self->demo_port);
    snprintf (replica, sizeof replica, "%d", child->index);
    char *argv[6] = {child->binary, NULL};
    if (strcmp (child->kind->name, "mock") == 0) {
        argv[1] = "--port";
        argv[2] = port;
        argv[3] = "--key";
        argv[4] = self->demo_key;
    }
    pid_t pid = fork ();
    if (pid == 0) {
        //  Own process group: a terminal's Ctrl-C reaches only the launcher, which then
        //  stops everyone in order. PDEATHSIG covers a launcher killed with -9.
        setpgid (0, 0);
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        if (getppid () != self->self_pid)
            _exit (0);
        signal (SIGPIPE, SIG_DFL);
        sigprocmask (SIG_SETMASK, &self->old_mask, NULL);
        dup2 (self->nullfd, STDIN_FILENO);
        dup2 (out_w, STDOUT_FILENO);
        dup2 (err_p[1], STDERR_FILENO);
        setenv ("ANYRAY_REPLICA", replica, 1);
        execv (argv[0], argv);
        dprintf (STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror (errno));
        _exit (127);
    }
    close (out_w);
    close (err_p[1]);
    if (pid < 0) {
        close (out_r);
        close (err_p[0]);
        return -1;
    }
    child->pid = pid;
    child->started = now;
    child->restart_at = 0;
    child->term_sent = false;
    s_stream_add (self, out_r, STDOUT_FILENO, child->label);
    s_stream_add (self, err_p[0], STDERR_FILENO, child->label);
    if (s_write_pid (self->pid_dir, child->kind->name, child->index, pid) != 0)
        s_log ("cannot write pid file for %s: %s", child->label, strerror (errno));
    return 0;
}

static s_child_t *s_child_by_pid (s_launch_t *self, pid_t pid)
{
    for (size_t i = 0; i < self->child_count; i++)
        if (self->children[i].pid == pid)
            return &self->children[i];
    return NULL;
}

static void s_describe_status (int status, char *buf, size_t size)
{
    if (WIFSIGNALED (status))
        snprintf (buf, size, "signal %d", WTERMSIG (status));
    else
        snprintf (buf, size, "status %d", WEXITSTATUS (status));
}

static void s_reap (s_launch_t *self, int64_t now)
{
    int status;
    pid_t pid;
    while ((pid = waitpid (-1, &status, WNOHANG)) > 0) {
        s_child_t *child = s_child_by_pid (self, pid);
        if (!child)
            continue;
        child->pid = 0;
        s_streams_linger (self, child->label, now);
        char what[32];
        s_describe_status (status, what, sizeof what);
        if (self->stopping) {
            bool clean = (WIFEXITED (status) && WEXITSTATUS (status) == 0) ||
                         (WIFSIGNALED (status) && WTERMSIG (status) == SIGTERM);
            if (!clean)
                s_log ("%s exited (%s) while stopping", child->label, what);
            continue;
        }
        child->backoff_ms = ar_launch_backoff (child->backoff_ms, now - child->started);
        child->restart_at = now + child->backoff_ms;
        s_log ("%s exited (%s); restarting in %d ms", child->label, what, child->backoff_ms);
    }
}

//  --------------------------------------------------------------------------
//  Stopping: tier by tier from the edge down, within S_STOP_MS in all

static bool s_tier_alive (s_launch_t *self, int tier)
{
    for (size_t i = 0; i < self->child_count; i++)
        if (self->children[i].pid > 0 && (tier < 0 || self->children[i].kind->tier == tier))
            return true;
    return false;
}

static void s_stop_begin (s_launch_t *self, int64_t now)
{
    if (self->stopping) {
        //  A second Ctrl-C: no more waiting
        s_log ("second signal: killing everything now");
        self->stop_deadline = now;
        return;
    }
    self->stopping = true;
    self->stop_deadline = now + self->stop_ms;
    self->stop_tier = S_TIER_MAX + 1;
    self->stage_until = now;
    s_log ("stopping");
}

//  Moves the stop along; returns true once every child is gone.
static bool s_stop_step (s_launch_t *self, int64_t now)
{
    if (!s_tier_alive (self, -1))
        return true;
    if (now >= self->stop_deadline) {
        for (size_t i = 0; i < self->child_count; i++) {
            s_child_t *child = &self->children[i];
            if (child->pid <= 0)
                continue;
            s_log ("%s did not stop in time; killing it", child->label);
            kill (child->pid, SIGKILL);
            waitpid (child->pid, NULL, 0);
            child->pid = 0;
        }
        return true;
    }
    if (self->stop_tier <= S_TIER_MAX && s_tier_alive (self, self->stop_tier) &&
        now < self->stage_until)
        return false;
    while (self->stop_tier > 0) {
        self->stop_tier--;
        if (!s_tier_alive (self, self->stop_tier))
            continue;
        for (size_t i = 0; i < self->child_count; i++) {
            s_child_t *child = &self->children[i];
            if (child->pid > 0 && child->kind->tier == self->stop_tier && !child->term_sent) {
                kill (child->pid, SIGTERM);
                child->term_sent = true;
            }
        }
        self->stage_until = now + S_STAGE_MS;
        if (self->stage_until > self->stop_deadline)
            self->stage_until = self->stop_deadline;
        return false;
    }
    //  Every tier has had its SIGTERM; wait out the deadline
    self->stage_until = self->stop_deadline;
    return false;
}

//  --------------------------------------------------------------------------
//  Setup

static void s_usage (FILE *to)
{
    fprintf (to, "usage: anyray-launch [--demo] [--bin-dir DIR]\n"
                 "  --demo         also start the bundled mock upstream and use it as openai\n"
                 "  --bin-dir DIR  where the binaries are (default: the build tree holding "
                 "this launcher)\n"
                 "Replicas: ANYRAY_REPLICAS_<NAME>=N (broker, optimizer, router, provider, "
                 "spend, edge).\n");
}

static int s_find_binary (const s_launch_t *self, const s_kind_t *kind, char *buf, size_t size)
{
    //  A build tree keeps each binary in its folder; an install puts them side by side
    const char *base = strrchr (kind->binary, '/');
    base = base ? base + 1 : kind->binary;
    const char *tries[2] = {kind->binary, base};
    for (int i = 0; i < 2; i++) {
        if (snprintf (buf, size, "%s/%s", self->bin_dir, tries[i]) >= (int)size)
            return -1;
        if (access (buf, X_OK) == 0)
            return 0;
    }
    return -1;
}

static int s_setup_dirs (s_launch_t *self)
{
    const char *dir = getenv ("ANYRAY_DATA_DIR");
    if (!dir || !*dir)
        dir = ".anyray-data";
    if (s_mkdir_p (dir) != 0 || !realpath (dir, self->data_dir)) {
        s_log ("cannot create data dir %s: %s", dir, strerror (errno));
        return -1;
    }
    //  Absolute, so every child agrees on it whatever its working directory
    setenv ("ANYRAY_DATA_DIR", self->data_dir, 1);
    if (snprintf (self->pid_dir, sizeof self->pid_dir, "%s/pids", self->data_dir) >=
            (int)sizeof self->pid_dir ||
        s_mkdir_p (self->pid_dir) != 0) {
        s_log ("cannot create %s/pids", self->data_dir);
        return -1;
    }
    s_remove_pid_files (self->pid_dir);
    return 0;
}

static int s_setup_demo (s_launch_t *self)
{
    int want = s_env_int ("ANYRAY_DEMO_PORT", 8789, 1, 65535);
    self->demo_port = 0;
    for (int port = want; port < want + 50 && port <= 65535; port++) {
        if (port != self->port && s_port_free (port)) {
            self->demo_port = port;
            break;
        }
    }
    if (!self->demo_port) {
        s_log ("no free loopback port for the mock upstream from %d on", want);
        return -1;
    }
    unsigned char raw[16];
    if (getrandom (raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        s_log ("getrandom: %s", strerror (errno));
        return -1;
    }
    char *key = self->demo_key;
    key += sprintf (key, "sk-demo-");
    for (size_t i = 0; i < sizeof raw; i++)
        key += sprintf (key, "%02x", raw[i]);
    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/v1", self->demo_port);
    setenv ("ANYRAY_PROVIDER_URL_OPENAI", url, 1);
    setenv ("ANYRAY_PROVIDER_KEY_OPENAI", self->demo_key, 1);
    //  The mock speaks OpenAI: Anthropic SDK calls go to it translated, unless asked otherwise.
    setenv ("ANYRAY_ANTHROPIC_SDK_PROVIDER", "openai", 0);
    return 0;
}

static int s_setup_children (s_launch_t *self)
{
    size_t total = 0;
    int counts[S_KINDS];
    for (size_t k = 0; k < S_KINDS; k++) {
        const s_kind_t *kind = &s_kinds[k];
        counts[k] = 0;
        if (kind->demo_only && !self->demo)
            continue;
        char var[64], upper[32];
        size_t i;
        for (i = 0; kind->name[i] && i < sizeof upper - 1; i++)
            upper[i] = (char)toupper ((unsigned char)kind->name[i]);
        upper[i] = 0;
        snprintf (var, sizeof var, "ANYRAY_REPLICAS_%s", upper);
        const char *value = getenv (var);
        counts[k] = ar_launch_replicas (value, kind->replicas, kind->max);
        if (value && *value && ar_launch_replicas (value, -1, kind->max) < 0)
            s_log ("ignoring %s=%s (want 0..%d)", var, value, kind->max);
        total += (size_t)counts[k];
    }
    self->children = calloc (total ? total : 1, sizeof *self->children);
    if (!self->children)
        return -1;
    int missing = 0;
    for (size_t k = 0; k < S_KINDS; k++) {
        if (counts[k] == 0)
            continue;
        char binary[PATH_MAX];
        if (s_find_binary (self, &s_kinds[k], binary, sizeof binary) != 0) {
            s_log ("missing %s/%s (build first: ./anyray up)", self->bin_dir, s_kinds[k].binary);
            missing++;
        }
        for (int i = 0; i < counts[k]; i++) {
            s_child_t *child = &self->children[self->child_count++];
            child->kind = &s_kinds[k];
            child->index = i;
            snprintf (child->label, sizeof child->label, "%s[%d]", s_kinds[k].name, i);
            memcpy (child->binary, binary, sizeof binary);
        }
    }
    return missing ? -1 : 0;
}

static int s_setup_signals (s_launch_t *self)
{
    //  Defaults first: an ignored signal never reaches a signalfd, and an ignored SIGCHLD
    //  would reap our children behind our back
    signal (SIGINT, SIG_DFL);
    signal (SIGTERM, SIG_DFL);
    signal (SIGCHLD, SIG_DFL);
    signal (SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset (&mask);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGTERM);
    sigaddset (&mask, SIGCHLD);
    struct sigaction hup;
    if (sigaction (SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN)
        sigaddset (&mask, SIGHUP); //  respect nohup
    if (sigprocmask (SIG_BLOCK, &mask, &self->old_mask) != 0)
        return -1;
    self->sigfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    return self->sigfd >= 0 ? 0 : -1;
}

static void s_banner (s_launch_t *self)
{
    char text[PATH_MAX + 1024];
    int n = snprintf (text, sizeof text,
                      "\nAnyray gateway on http://127.0.0.1:%d  "
                      "(OPENAI_BASE_URL=http://127.0.0.1:%d/v1)\n",
                      self->port, self->port);
    if (self->demo && n > 0 && (size_t)n < sizeof text)
        n += snprintf (text + n, sizeof text - (size_t)n,
                       "Demo mode: the openai provider is the bundled mock on 127.0.0.1:%d. Try:\n"
                       "  curl http://127.0.0.1:%d/v1/chat/completions -H 'content-type: "
                       "application/json' \\\n"
                       "    -d '{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\","
                       "\"content\":\"hi\"}]}'\n"
                       "Anthropic SDK calls (ANTHROPIC_BASE_URL=http://127.0.0.1:%d) reach it "
                       "translated.\n",
                       self->demo_port, self->port, self->port);
    if (n > 0 && (size_t)n < sizeof text)
        n += snprintf (text + n, sizeof text - (size_t)n,
                       "Data in %s. Ctrl-C stops everything.\n\n", self->data_dir);
    if (write (STDOUT_FILENO, text, strlen (text)) < 0) {
    }
}

//  --------------------------------------------------------------------------
//  The loop

static int s_timeout (s_launch_t *self, int64_t now)
{
    int64_t next = now + 1000;
    for (size_t i = 0; i < self->child_count; i++)
        if (self->children[i].restart_at && self->children[i].restart_at < next)
            next = self->children[i].restart_at;
    for (size_t i = 0; i < self->stream_count; i++)
        if (self->streams[i]->linger_until && self->streams[i]->linger_until < next)
            next = self->streams[i]->linger_until;
    if (!self->stopping && !self->banner_done && self->probe_at < next)
        next = self->probe_at;
    if (self->stopping && self->stage_until < next)
        next = self->stage_until;
    if (self->stopping && self->stop_deadline < next)
        next = self->stop_deadline;
    return next > now ? (int)(next - now) : 0;
}

static void s_tick (s_launch_t *self, int64_t now)
{
    if (!self->stopping) {
        for (size_t i = 0; i < self->child_count; i++) {
            s_child_t *child = &self->children[i];
            if (child->restart_at && now >= child->restart_at) {
                if (s_child_start (self, child, now) == 0)
                    s_log ("%s restarted (pid %d)", child->label, (int)child->pid);
                else {
                    child->backoff_ms = ar_launch_backoff (child->backoff_ms, 0);
                    child->restart_at = now + child->backoff_ms;
                    s_log ("cannot start %s: %s", child->label, strerror (errno));
                }
            }
        }
    }
    if (!self->stopping && !self->banner_done && now >= self->probe_at) {
        if (s_port_accepts (self->port)) {
            self->banner_done = true;
            s_banner (self);
        } else if (self->probe_warn_at && now >= self->probe_warn_at) {
            s_log ("nothing accepts on 127.0.0.1:%d yet; still waiting for the edge", self->port);
            self->probe_warn_at = 0;
        }
        self->probe_at = now + S_PROBE_MS;
    }
    for (size_t i = 0; i < self->stream_count; i++) {
        s_stream_t *stream = self->streams[i];
        if (stream->fd >= 0 && stream->linger_until && now >= stream->linger_until) {
            s_stream_read (stream);
            s_stream_close (stream);
        }
    }
    s_streams_compact (self);
}

static int s_run (s_launch_t *self)
{
    struct pollfd *items = NULL;
    size_t items_cap = 0;
    int rc = 0;
    while (true) {
        int64_t now = s_now ();
        if (self->stopping && s_stop_step (self, now))
            break;
        s_tick (self, now);
        if (items_cap < self->stream_count + 1) {
            items_cap = (self->stream_count + 1) * 2;
            struct pollfd *grown = realloc (items, items_cap * sizeof *items);
            if (!grown) {
                rc = 1;
                break;
            }
            items = grown;
        }
        items[0] = (struct pollfd){.fd = self->sigfd, .events = POLLIN};
        for (size_t i = 0; i < self->stream_count; i++)
            items[i + 1] = (struct pollfd){.fd = self->streams[i]->fd, .events = POLLIN};
        size_t count = self->stream_count;
        if (poll (items, count + 1, s_timeout (self, s_now ())) < 0 && errno != EINTR) {
            s_log ("poll: %s", strerror (errno));
            rc = 1;
            break;
        }
        for (size_t i = 0; i < count; i++)
            if (items[i + 1].revents && s_stream_read (self->streams[i]) < 0)
                s_stream_close (self->streams[i]);
        if (items[0].revents & POLLIN) {
            struct signalfd_siginfo info;
            while (read (self->sigfd, &info, sizeof info) == (ssize_t)sizeof info) {
                if (info.ssi_signo == SIGCHLD)
                    s_reap (self, s_now ());
                else
                    s_stop_begin (self, s_now ());
            }
        }
    }
    free (items);
    return rc;
}

static void s_destroy (s_launch_t *self)
{
    for (size_t i = 0; i < self->stream_count; i++) {
        s_stream_t *stream = self->streams[i];
        if (stream->fd >= 0) {
            s_stream_read (stream);
            s_stream_close (stream);
        }
        free (stream);
    }
    free (self->streams);
    free (self->children);
    if (self->sigfd >= 0)
        close (self->sigfd);
    if (self->nullfd >= 0)
        close (self->nullfd);
    if (self->pid_dir[0])
        s_remove_pid_files (self->pid_dir);
}

int ar_launch_main (int argc, char *argv[])
{
    s_launch_t self_ = {.sigfd = -1, .nullfd = -1}, *self = &self_;
    const char *bin_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--demo") == 0)
            self->demo = true;
        else if (strcmp (argv[i], "--bin-dir") == 0 && i + 1 < argc)
            bin_dir = argv[++i];
        else if (strncmp (argv[i], "--bin-dir=", 10) == 0)
            bin_dir = argv[i] + 10;
        else if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0) {
            s_usage (stdout);
            return 0;
        } else {
            s_usage (stderr);
            return 2;
        }
    }
    if (bin_dir) {
        if (!realpath (bin_dir, self->bin_dir)) {
            s_log ("bin dir %s: %s", bin_dir, strerror (errno));
            return 1;
        }
    } else {
        char exe[PATH_MAX];
        ssize_t len = readlink ("/proc/self/exe", exe, sizeof exe - 1);
        if (len <= 0) {
            s_log ("cannot find my own path; use --bin-dir");
            return 1;
        }
        exe[len] = 0;
        if (ar_launch_bin_dir (exe, self->bin_dir, sizeof self->bin_dir) != 0)
            return 1;
    }
    self->self_pid = getpid ();
    self->port = s_env_int ("ANYRAY_PORT", 8787, 1, 65535);
    self->stop_ms = s_env_int ("ANYRAY_STOP_TIMEOUT_MS", S_STOP_MS, 0, 600000);
    int rc = 1;
    if (s_port_accepts (self->port)) {
        //  Our edges share the port with SO_REUSEPORT: a second stack would split traffic
        s_log ("127.0.0.1:%d is already taken (another Anyray running?); set ANYRAY_PORT",
               self->port);
        return 1;
    }
    int optimizer_port = s_env_int ("ANYRAY_OPTIMIZER_PORT", 8088, 0, 65535);
    if (optimizer_port && s_port_accepts (optimizer_port)) {
        s_log ("127.0.0.1:%d is already taken (another Anyray running?); set "
               "ANYRAY_OPTIMIZER_PORT (0 turns the optimizer port off)",
               optimizer_port);
        return 1;
    }
    if (s_setup_dirs (self) != 0 || (self->demo && s_setup_demo (self) != 0) ||
        s_setup_children (self) != 0)
        goto done;
    self->nullfd = open ("/dev/null", O_RDWR | O_CLOEXEC);
    if (self->nullfd < 0 || s_setup_signals (self) != 0) {
        s_log ("setup: %s", strerror (errno));
        goto done;
    }
    s_raise_nofile ();
    //  For `./anyray down`
    s_write_pid (self->pid_dir, "anyray-launch", 0, self->self_pid);

    int64_t now = s_now ();
    for (int tier = 0; tier <= S_TIER_MAX; tier++) {
        for (size_t i = 0; i < self->child_count; i++) {
            s_child_t *child = &self->children[i];
            if (child->kind->tier != tier)
                continue;
            if (s_child_start (self, child, now) == 0)
                s_log ("started %s (pid %d)", child->label, (int)child->pid);
            else {
                child->backoff_ms = ar_launch_backoff (0, 0);
                child->restart_at = now + child->backoff_ms;
                s_log ("cannot start %s: %s", child->label, strerror (errno));
            }
        }
    }
    bool has_edge = false;
    for (size_t i = 0; i < self->child_count; i++)
        has_edge |= strcmp (self->children[i].kind->name, "edge") == 0;
    self->banner_done = !has_edge;
    self->probe_at = now;
    self->probe_warn_at = now + S_PROBE_WARN_MS;
    rc = s_run (self) == 0 ? 0 : 1;
done:
    s_destroy (self);
    return rc;
}

//  --------------------------------------------------------------------------
//  Self-test: the pure parts, then a whole launcher over fake children (shell scripts named
//  like the binaries): kill -9 one, watch it come back, stop with SIGTERM.

static char s_test_dir[PATH_MAX];

static void s_write_file (const char *path, const char *text, mode_t mode)
{
    FILE *file = fopen (path, "w");
    assert (file);
    fputs (text, file);
    fclose (file);
    chmod (path, mode);
}

static pid_t s_read_pid (const char *name)
{
    char path[PATH_MAX + 64];
    snprintf (path, sizeof path, "%s/data/pids/%s.pid", s_test_dir, name);
    FILE *file = fopen (path, "r");
    if (!file)
        return 0;
    int pid = 0;
    if (fscanf (file, "%d", &pid) != 1)
        pid = 0;
    fclose (file);
    return pid;
}

static bool s_file_contains (const char *path, const char *needle)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return false;
    static char text[1 << 16];
    size_t len = fread (text, 1, sizeof text - 1, file);
    text[len] = 0;
    fclose (file);
    return strstr (text, needle) != NULL;
}

static int s_rm_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove (path);
}

static void s_sleep_ms (int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep (&ts, NULL);
}

static int s_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (bind (fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    socklen_t len = sizeof addr;
    getsockname (fd, (struct sockaddr *)&addr, &len);
    close (fd);
    return ntohs (addr.sin_port);
}

static void s_test_supervisor (bool verbose)
{
    snprintf (s_test_dir, sizeof s_test_dir, "/tmp/ar-launch-test-XXXXXX");
    assert (mkdtemp (s_test_dir));
    char path[PATH_MAX + 128], log_path[PATH_MAX + 64];
    //  Fake children: say hello, record what they were given, exit 0 on SIGTERM
    const char *script = "#!/bin/sh\n"
                         "echo \"hello from $(basename $0) $*\"\n"
                         "echo \"$* url=$ANYRAY_PROVIDER_URL_OPENAI key=$ANYRAY_PROVIDER_KEY_OPENAI"
                         " replica=$ANYRAY_REPLICA\" > \"$ANYRAY_DATA_DIR/$(basename $0).args\"\n"
                         "trap 'exit 0' TERM\n"
                         "while :; do sleep 0.05; done\n";
    for (size_t k = 0; k < S_KINDS; k++) {
        snprintf (path, sizeof path, "%s/bin/%s", s_test_dir, s_kinds[k].binary);
        char *slash = strrchr (path, '/');
        *slash = 0;
        assert (s_mkdir_p (path) == 0);
        *slash = '/';
        s_write_file (path, script, 0755);
    }
    snprintf (log_path, sizeof log_path, "%s/launch.log", s_test_dir);
    int port = s_free_port ();
    int demo_port = s_free_port ();

    pid_t launcher = fork ();
    assert (launcher >= 0);
    if (launcher == 0) {
        int fd = open (log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2 (fd, STDOUT_FILENO);
        dup2 (fd, STDERR_FILENO);
        close (fd);
        char env[PATH_MAX + 64];
        snprintf (env, sizeof env, "%s/data", s_test_dir);
        setenv ("ANYRAY_DATA_DIR", env, 1);
        snprintf (env, sizeof env, "%d", port);
        setenv ("ANYRAY_PORT", env, 1);
        snprintf (env, sizeof env, "%d", demo_port);
        setenv ("ANYRAY_DEMO_PORT", env, 1);
        setenv ("ANYRAY_REPLICAS_EDGE", "2", 1);
        setenv ("ANYRAY_REPLICAS_BROKER", "3", 1); //  refused: one broker only
        snprintf (env, sizeof env, "%s/bin", s_test_dir);
        char *args[] = {"anyray-launch", "--demo", "--bin-dir", env, NULL};
        _exit (ar_launch_main (4, args));
    }
    //  Every child is up with a pid file (up to 20 s: a loaded 2-core CI machine took over 5)
    const char *names[] = {"mock-0",     "broker-0", "optimizer-0", "router-0",
                           "provider-0", "spend-0",  "edge-0",      "edge-1"};
    size_t name_count = sizeof names / sizeof names[0];
    for (int tries = 0; tries < 400; tries++) {
        size_t up = 0;
        for (size_t i = 0; i < name_count; i++)
            up += s_read_pid (names[i]) > 0;
        if (up == name_count)
            break;
        s_sleep_ms (50);
    }
    for (size_t i = 0; i < name_count; i++)
        assert (s_read_pid (names[i]) > 0);
    assert (s_read_pid ("broker-1") == 0);

    //  kill -9 the provider: it comes back with a new pid
    pid_t first = s_read_pid ("provider-0");
    assert (kill (first, SIGKILL) == 0);
    pid_t second = 0;
    for (int tries = 0; tries < 100; tries++) {
        second = s_read_pid ("provider-0");
        if (second > 0 && second != first)
            break;
        s_sleep_ms (50);
    }
    assert (second > 0 && second != first);
    assert (kill (second, 0) == 0);

    //  The demo wiring reached the children: the mock's port and key are the edge's upstream
    //  (the port is demo_port unless someone took it meanwhile: then one above)
    snprintf (path, sizeof path, "%s/data/anyray-mock-upstream.args", s_test_dir);
    for (int tries = 0; tries < 100 && !s_file_contains (path, "--key sk-demo-"); tries++)
        s_sleep_ms (50);
    FILE *file = fopen (path, "r");
    assert (file);
    int mock_port = 0;
    char mock_key[64] = "";
    assert (fscanf (file, "--port %d --key %63s", &mock_port, mock_key) == 2);
    fclose (file);
    assert (mock_port >= demo_port && mock_port < demo_port + 50);
    assert (strncmp (mock_key, "sk-demo-", 8) == 0 && strlen (mock_key) == 8 + 32);
    char expect[160];
    snprintf (path, sizeof path, "%s/data/anyray-edge.args", s_test_dir);
    snprintf (expect, sizeof expect, "url=http://127.0.0.1:%d/v1 key=%s replica=", mock_port,
              mock_key);
    assert (s_file_contains (path, expect));

    //  SIGTERM: everyone stops, the launcher exits 0 and removes the pid files
    s_sleep_ms (100);
    pid_t edge = s_read_pid ("edge-0");
    assert (kill (launcher, SIGTERM) == 0);
    int status = -1;
    for (int tries = 0; tries < 160; tries++) {
        if (waitpid (launcher, &status, WNOHANG) == launcher)
            break;
        s_sleep_ms (50);
    }
    if (verbose || !(WIFEXITED (status) && WEXITSTATUS (status) == 0)) {
        snprintf (path, sizeof path, "cat %s", log_path);
        if (system (path) != 0) {
        }
    }
    assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    assert (kill (second, 0) != 0 && kill (edge, 0) != 0);
    assert (s_read_pid ("provider-0") == 0);
    assert (s_file_contains (log_path, "provider[0] exited (signal 9); restarting in 100 ms"));
    assert (s_file_contains (log_path, "provider[0] restarted"));
    assert (s_file_contains (log_path, "edge[1]      | hello from anyray-edge"));
    assert (s_file_contains (log_path, "ignoring ANYRAY_REPLICAS_BROKER=3"));
    assert (!s_file_contains (log_path, "did not stop in time"));
    nftw (s_test_dir, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void ar_launch_test (bool verbose)
{
    //  @selftest
    assert (ar_launch_backoff (0, 0) == 100);
    assert (ar_launch_backoff (100, 50) == 200);
    assert (ar_launch_backoff (200, 9999) == 400);
    assert (ar_launch_backoff (3200, 10) == 5000);
    assert (ar_launch_backoff (5000, 10) == 5000);
    assert (ar_launch_backoff (5000, 10000) == 100);
    int delay = 0;
    for (int i = 0; i < 20; i++)
        delay = ar_launch_backoff (delay, 0);
    assert (delay == 5000);

    assert (ar_launch_replicas (NULL, 1, 64) == 1);
    assert (ar_launch_replicas ("", 1, 64) == 1);
    assert (ar_launch_replicas ("2", 1, 64) == 2);
    assert (ar_launch_replicas ("0", 1, 64) == 0);
    assert (ar_launch_replicas ("64", 1, 64) == 64);
    assert (ar_launch_replicas ("65", 1, 64) == 1);
    assert (ar_launch_replicas ("-1", 1, 64) == 1);
    assert (ar_launch_replicas ("two", 1, 64) == 1);
    assert (ar_launch_replicas ("3x", 1, 64) == 1);
    assert (ar_launch_replicas ("3 ", 1, 64) == 3);
    assert (ar_launch_replicas ("2", 1, 1) == 1);

    char dir[64];
    assert (ar_launch_bin_dir ("/src/build/deploy/anyray-launch", dir, sizeof dir) == 0);
    assert (strcmp (dir, "/src/build") == 0);
    assert (ar_launch_bin_dir ("/usr/local/bin/anyray-launch", dir, sizeof dir) == 0);
    assert (strcmp (dir, "/usr/local/bin") == 0);
    assert (ar_launch_bin_dir ("/deploy/anyray-launch", dir, sizeof dir) == 0);
    assert (strcmp (dir, "/") == 0);
    assert (ar_launch_bin_dir ("anyray-launch", dir, sizeof dir) == 0);
    assert (strcmp (dir, ".") == 0);
    assert (ar_launch_bin_dir ("/a/very/long/path/deploy/anyray-launch", dir, 8) == -1);

    s_test_supervisor (verbose);
    //  @end
}
