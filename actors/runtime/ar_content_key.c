/*  ar_content_key: ANYRAY_CONTENT_KEY, or a generated key kept in <data dir>/content.key.

    See ar_content_key.h. Every buffer that held key material is wiped before it is released,
    and no message built here contains the variable's value or the file's contents.
*/
#include "ar_content_key.h"
#include "ar_base64.h"
#include "ar_buf.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define S_FILE_MAX 256 // bytes read from content.key: 64 hex digits and a newline fit easily

struct ar_content_key_t {
    uint8_t key[AR_CONTENT_KEY_LEN];
    ar_content_key_source_t source;
    char warning[PATH_MAX + 256];
};

//  --------------------------------------------------------------------------
//  Parsing

static bool s_is_space (char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

//  32 bytes are 43 base64 digits (the last carries 4 bits, its low 2 zero) and one '=', which
//  may be left out.
static int s_parse_base64 (const char *text, size_t len, uint8_t *key)
{
    char padded[44];
    if (len != 43 && len != 44)
        return -1;
    memcpy (padded, text, 43);
    padded[43] = len == 44 ? text[43] : '=';
    size_t size = 0;
    int rc = ar_base64_decode (padded, sizeof padded, key, AR_CONTENT_KEY_LEN, &size);
    OPENSSL_cleanse (padded, sizeof padded);
    return rc == 0 && size == AR_CONTENT_KEY_LEN ? 0 : -1;
}

int ar_content_key_parse (const char *text, uint8_t key[AR_CONTENT_KEY_LEN], const char **error)
{
    const char *dummy;
    if (!error)
        error = &dummy;
    *error = NULL;
    if (!key) {
        *error = AR_CONTENT_KEY_ENV ": no buffer";
        return -1;
    }
    memset (key, 0, AR_CONTENT_KEY_LEN);
    if (!text) {
        *error = AR_CONTENT_KEY_ENV " is not set";
        return -1;
    }
    //  tolerate the newline of "$(cat key)" and stray blanks around the value
    while (s_is_space (*text))
        text++;
    size_t len = strlen (text);
    while (len && s_is_space (text[len - 1]))
        len--;
    if (len == 2 * AR_CONTENT_KEY_LEN) {
        for (size_t i = 0; i < AR_CONTENT_KEY_LEN; i++) {
            int high = ar_hex_value (text[2 * i]);
            int low = ar_hex_value (text[2 * i + 1]);
            if (high < 0 || low < 0) {
                OPENSSL_cleanse (key, AR_CONTENT_KEY_LEN);
                *error = AR_CONTENT_KEY_ENV ": 64 characters but not all hex digits";
                return -1;
            }
            key[i] = (uint8_t)(high << 4 | low);
        }
        return 0;
    }
    if (len == 43 || len == 44) {
        if (s_parse_base64 (text, len, key) == 0)
            return 0;
        OPENSSL_cleanse (key, AR_CONTENT_KEY_LEN);
        *error = AR_CONTENT_KEY_ENV ": not valid base64 of 32 bytes";
        return -1;
    }
    *error = AR_CONTENT_KEY_ENV
        ": wrong length (want 64 hex digits or the base64 of 32 bytes, e.g. openssl rand -hex 32)";
    return -1;
}

//  --------------------------------------------------------------------------
//  The key file

//  Read and parse path. Returns 0, 1 when the file does not exist, or -1 with *error set.
static int s_file_load (const char *path, uint8_t *key, char *error, size_t error_size)
{
    int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        snprintf (error, error_size, "cannot open %s: %s", path, strerror (errno));
        return -1;
    }
    struct stat st;
    if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)) {
        close (fd);
        snprintf (error, error_size, "%s is not a regular file", path);
        return -1;
    }
    //  a key others can read is not a secret any more: say so rather than use it
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        close (fd);
        snprintf (error, error_size,
                  "%s is accessible to group or others (mode %04o): chmod 600 it", path,
                  (unsigned)(st.st_mode & 07777));
        return -1;
    }
    char text[S_FILE_MAX + 1];
    size_t got = 0;
    while (got < S_FILE_MAX) {
        ssize_t n = read (fd, text + got, S_FILE_MAX - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close (fd);
    text[got] = '\0';
    const char *reason = NULL;
    int rc = strlen (text) == got ? ar_content_key_parse (text, key, &reason) : -1;
    OPENSSL_cleanse (text, sizeof text);
    if (rc != 0) {
        snprintf (error, error_size,
                  "%s does not hold a content key (64 hex digits); remove it to generate a new "
                  "one (content stored under the old key is then lost)",
                  path);
        return -1;
    }
    return 0;
}

static int s_write_all (int fd, const char *data, size_t size)
{
    while (size) {
        ssize_t n = write (fd, data, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

//  Generate a key and publish it as path without ever showing a partial file: write a temp
//  file, fsync, then link() it into place, which fails if another replica got there first.
//  Returns 0 (ours), 1 (someone else's exists now: load it), or -1 with *error set.
static int s_file_create (const char *data_dir, const char *path, uint8_t *key, char *error,
                          size_t error_size)
{
    char temp[PATH_MAX];
    if (snprintf (temp, sizeof temp, "%s/.%s.XXXXXX", data_dir, AR_CONTENT_KEY_FILE) >=
        (int)sizeof temp) {
        snprintf (error, error_size, "data dir path too long");
        return -1;
    }
    if (RAND_bytes (key, AR_CONTENT_KEY_LEN) != 1) {
        snprintf (error, error_size, "no randomness for a new content key");
        return -1;
    }
    char text[2 * AR_CONTENT_KEY_LEN + 2];
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < AR_CONTENT_KEY_LEN; i++) {
        text[2 * i] = digits[key[i] >> 4];
        text[2 * i + 1] = digits[key[i] & 15];
    }
    text[2 * AR_CONTENT_KEY_LEN] = '\n';
    text[2 * AR_CONTENT_KEY_LEN + 1] = '\0';
    int fd = mkostemp (temp, O_CLOEXEC); // mode 0600
    if (fd < 0) {
        OPENSSL_cleanse (text, sizeof text);
        snprintf (error, error_size, "cannot create a file in %s: %s", data_dir, strerror (errno));
        return -1;
    }
    int rc = fchmod (fd, 0600) == 0 && s_write_all (fd, text, 2 * AR_CONTENT_KEY_LEN + 1) == 0 &&
                     fsync (fd) == 0
                 ? 0
                 : -1;
    int saved = errno;
    OPENSSL_cleanse (text, sizeof text);
    close (fd);
    if (rc == 0 && link (temp, path) != 0) {
        saved = errno;
        rc = saved == EEXIST ? 1 : -1;
    }
    unlink (temp);
    if (rc < 0) {
        snprintf (error, error_size, "cannot create %s: %s", path, strerror (saved));
        return -1;
    }
    if (rc == 0) {
        //  make the new name itself durable
        int dir = open (data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir >= 0) {
            fsync (dir);
            close (dir);
        }
    } else
        OPENSSL_cleanse (key, AR_CONTENT_KEY_LEN);
    return rc;
}

//  --------------------------------------------------------------------------
//  Load the key from the environment or the data dir.

ar_content_key_t *ar_content_key_new (const char *data_dir, const char **error)
{
    static char message[PATH_MAX + 256];
    const char *dummy;
    if (!error)
        error = &dummy;
    *error = NULL;
    ar_content_key_t *self = (ar_content_key_t *)calloc (1, sizeof (ar_content_key_t));
    if (!self) {
        *error = "out of memory";
        return NULL;
    }
    const char *value = getenv (AR_CONTENT_KEY_ENV);
    if (value && *value) {
        if (ar_content_key_parse (value, self->key, error) != 0) {
            ar_content_key_destroy (&self);
            return NULL;
        }
        self->source = AR_CONTENT_KEY_FROM_ENV;
        return self;
    }
    char path[PATH_MAX];
    if (!data_dir || !*data_dir ||
        snprintf (path, sizeof path, "%s/%s", data_dir, AR_CONTENT_KEY_FILE) >= (int)sizeof path) {
        *error = AR_CONTENT_KEY_ENV " is not set and there is no data dir to keep a key in";
        ar_content_key_destroy (&self);
        return NULL;
    }
    self->source = AR_CONTENT_KEY_FROM_FILE;
    int rc = s_file_load (path, self->key, message, sizeof message);
    if (rc == 1) {
        rc = s_file_create (data_dir, path, self->key, message, sizeof message);
        if (rc == 0)
            self->source = AR_CONTENT_KEY_FROM_GENERATED;
        else if (rc == 1) // another replica created it in the meantime: use theirs
            rc = s_file_load (path, self->key, message, sizeof message);
    }
    if (rc != 0) {
        *error = message;
        ar_content_key_destroy (&self);
        return NULL;
    }
    snprintf (self->warning, sizeof self->warning,
              "%s is not set: %s the content key in %s (losing that file loses stored content; "
              "replicas on other hosts must share one key: set %s)",
              AR_CONTENT_KEY_ENV,
              self->source == AR_CONTENT_KEY_FROM_GENERATED ? "generated" : "using", path,
              AR_CONTENT_KEY_ENV);
    return self;
}

//  --------------------------------------------------------------------------
//  Wipe and free.

void ar_content_key_destroy (ar_content_key_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        OPENSSL_cleanse ((*self_p)->key, sizeof (*self_p)->key);
        free (*self_p);
        *self_p = NULL;
    }
}

const uint8_t *ar_content_key_bytes (ar_content_key_t *self)
{
    assert (self);
    return self->key;
}

ar_content_key_source_t ar_content_key_source (ar_content_key_t *self)
{
    assert (self);
    return self->source;
}

const char *ar_content_key_warning (ar_content_key_t *self)
{
    assert (self);
    return self->warning[0] ? self->warning : NULL;
}

//  --------------------------------------------------------------------------
//  Self-test

//  A bad value must fail, name the variable, and not appear in the message.
static void s_test_refused (const char *value)
{
    uint8_t key[AR_CONTENT_KEY_LEN];
    memset (key, 0xAA, sizeof key);
    const char *error = NULL;
    assert (ar_content_key_parse (value, key, &error) == -1);
    assert (error && strstr (error, AR_CONTENT_KEY_ENV));
    if (strlen (value) >= 4)
        assert (strstr (error, value) == NULL);
    for (size_t i = 0; i < sizeof key; i++)
        assert (key[i] == 0); // nothing half-parsed left behind
    //  through the environment too
    setenv (AR_CONTENT_KEY_ENV, value, 1);
    ar_content_key_t *self = ar_content_key_new ("/nonexistent", &error);
    assert (self == NULL);
    assert (error && strstr (error, AR_CONTENT_KEY_ENV));
    if (strlen (value) >= 4)
        assert (strstr (error, value) == NULL);
    unsetenv (AR_CONTENT_KEY_ENV);
}

static mode_t s_test_mode (const char *path)
{
    struct stat st;
    assert (stat (path, &st) == 0);
    return st.st_mode & 07777;
}

void ar_content_key_test (bool verbose)
{
    //  @selftest
    char *saved_env = getenv (AR_CONTENT_KEY_ENV) ? strdup (getenv (AR_CONTENT_KEY_ENV)) : NULL;
    unsetenv (AR_CONTENT_KEY_ENV);
    uint8_t want[AR_CONTENT_KEY_LEN];
    for (size_t i = 0; i < sizeof want; i++)
        want[i] = (uint8_t)(i * 7 + 3);
    uint8_t key[AR_CONTENT_KEY_LEN];
    const char *error = NULL;

    //  Hex, either case, with surrounding whitespace.
    const char *hex = "030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dc";
    assert (ar_content_key_parse (hex, key, &error) == 0 && error == NULL);
    assert (memcmp (key, want, sizeof want) == 0);
    assert (
        ar_content_key_parse ("030A11181F262D343B424950575E656C737A81888F969DA4ABB2B9C0C7CED5DC",
                              key, &error) == 0);
    assert (memcmp (key, want, sizeof want) == 0);
    char padded[128];
    snprintf (padded, sizeof padded, "  %s\n", hex);
    assert (ar_content_key_parse (padded, key, &error) == 0);
    assert (memcmp (key, want, sizeof want) == 0);
    //  Base64 (printf 030a11...dc | xxd -r -p | base64), padded or not.
    const char *b64 = "AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1dw=";
    assert (ar_content_key_parse (b64, key, &error) == 0);
    assert (memcmp (key, want, sizeof want) == 0);
    assert (ar_content_key_parse ("AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1dw", key, &error) == 0);
    assert (memcmp (key, want, sizeof want) == 0);

    //  Refused: wrong lengths, junk, non-canonical base64; the value never in the message.
    s_test_refused ("030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5"); // 62
    s_test_refused ("030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dc00");
    s_test_refused ("030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5zz");
    s_test_refused ("AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1Q=="); // 31 bytes
    s_test_refused ("AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1dzz"); // 33 bytes
    s_test_refused ("AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1dx="); // stray low bits
    s_test_refused ("AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1d!=");
    s_test_refused ("hunter2-my-secret-password");
    s_test_refused ("x");
    s_test_refused ("    \n");
    assert (ar_content_key_parse (NULL, key, &error) == -1 && error);

    //  From the environment: no file touched, no warning.
    char dir[] = "/tmp/ar_content_key_test.XXXXXX";
    assert (mkdtemp (dir));
    char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/%s", dir, AR_CONTENT_KEY_FILE);
    setenv (AR_CONTENT_KEY_ENV, b64, 1);
    ar_content_key_t *self = ar_content_key_new (dir, &error);
    assert (self);
    assert (ar_content_key_source (self) == AR_CONTENT_KEY_FROM_ENV);
    assert (memcmp (ar_content_key_bytes (self), want, sizeof want) == 0);
    assert (ar_content_key_warning (self) == NULL);
    assert (access (path, F_OK) != 0);
    ar_content_key_destroy (&self);
    assert (self == NULL);
    ar_content_key_destroy (&self); // twice is harmless
    unsetenv (AR_CONTENT_KEY_ENV);

    //  Unset: generated into content.key (0600), with a warning that says so ...
    self = ar_content_key_new (dir, &error);
    assert (self);
    assert (ar_content_key_source (self) == AR_CONTENT_KEY_FROM_GENERATED);
    uint8_t first[AR_CONTENT_KEY_LEN];
    memcpy (first, ar_content_key_bytes (self), sizeof first);
    const char *warning = ar_content_key_warning (self);
    assert (warning && strstr (warning, "generated") && strstr (warning, path));
    assert (strstr (warning, AR_CONTENT_KEY_ENV));
    if (verbose)
        printf ("   warning: %s\n", warning);
    assert (s_test_mode (path) == 0600);
    //  ... never the key itself (hex of the key not in the warning)
    char key_hex[2 * AR_CONTENT_KEY_LEN + 1];
    for (size_t i = 0; i < AR_CONTENT_KEY_LEN; i++)
        snprintf (key_hex + 2 * i, 3, "%02x", first[i]);
    assert (strstr (warning, key_hex) == NULL);
    ar_content_key_destroy (&self);
    //  The file holds the key as hex, so an operator can move it into the variable.
    FILE *file = fopen (path, "r");
    assert (file);
    char line[128] = "";
    assert (fgets (line, sizeof line, file));
    fclose (file);
    assert (strncmp (line, key_hex, 64) == 0 && line[64] == '\n');
    //  ... and it persists: the next start reuses it and says so.
    self = ar_content_key_new (dir, &error);
    assert (self);
    assert (ar_content_key_source (self) == AR_CONTENT_KEY_FROM_FILE);
    assert (memcmp (ar_content_key_bytes (self), first, sizeof first) == 0);
    warning = ar_content_key_warning (self);
    assert (warning && strstr (warning, "using") && strstr (warning, path));
    ar_content_key_destroy (&self);
    assert (s_test_mode (path) == 0600);
    //  The variable wins over the file.
    setenv (AR_CONTENT_KEY_ENV, hex, 1);
    self = ar_content_key_new (dir, &error);
    assert (self && memcmp (ar_content_key_bytes (self), want, sizeof want) == 0);
    ar_content_key_destroy (&self);
    unsetenv (AR_CONTENT_KEY_ENV);

    //  A key file readable by others is refused, naming the file, not the key.
    assert (chmod (path, 0644) == 0);
    self = ar_content_key_new (dir, &error);
    assert (self == NULL && error && strstr (error, path) && strstr (error, "0644"));
    assert (strstr (error, key_hex) == NULL);
    assert (chmod (path, 0600) == 0);
    //  A corrupt key file is refused without echoing it.
    file = fopen (path, "w");
    assert (file);
    fputs ("not-a-key-but-a-secret-anyway\n", file);
    fclose (file);
    self = ar_content_key_new (dir, &error);
    assert (self == NULL && error && strstr (error, path));
    assert (strstr (error, "not-a-key") == NULL);
    if (verbose)
        printf ("   corrupt: %s\n", error);
    assert (unlink (path) == 0);
    //  A symlink is not followed.
    assert (symlink ("/etc/hostname", path) == 0);
    assert (ar_content_key_new (dir, &error) == NULL && error);
    assert (unlink (path) == 0);
    //  No data dir to write into.
    char missing[PATH_MAX];
    snprintf (missing, sizeof missing, "%s/no/such", dir);
    assert (ar_content_key_new (missing, &error) == NULL && error && strstr (error, missing));
    assert (ar_content_key_new (NULL, &error) == NULL && strstr (error, AR_CONTENT_KEY_ENV));

    //  Replicas starting together agree on one key: fork a few that all race to create it.
    enum { S_RACERS = 6 };
    int pipes[S_RACERS][2];
    for (int i = 0; i < S_RACERS; i++) {
        assert (pipe (pipes[i]) == 0);
        pid_t pid = fork ();
        assert (pid >= 0);
        if (pid == 0) {
            ar_content_key_t *racer = ar_content_key_new (dir, NULL);
            uint8_t out[AR_CONTENT_KEY_LEN] = {0};
            if (racer)
                memcpy (out, ar_content_key_bytes (racer), sizeof out);
            ar_content_key_destroy (&racer);
            ssize_t n = write (pipes[i][1], out, sizeof out);
            _exit (n == (ssize_t)sizeof out ? 0 : 1);
        }
        close (pipes[i][1]);
    }
    uint8_t agreed[S_RACERS][AR_CONTENT_KEY_LEN];
    for (int i = 0; i < S_RACERS; i++) {
        assert (read (pipes[i][0], agreed[i], AR_CONTENT_KEY_LEN) == AR_CONTENT_KEY_LEN);
        close (pipes[i][0]);
    }
    for (int i = 0; i < S_RACERS; i++) {
        int status = 0;
        assert (wait (&status) > 0 && WIFEXITED (status) && WEXITSTATUS (status) == 0);
    }
    static const uint8_t zero[AR_CONTENT_KEY_LEN] = {0};
    for (int i = 0; i < S_RACERS; i++) {
        assert (memcmp (agreed[i], zero, sizeof zero) != 0);
        assert (memcmp (agreed[i], agreed[0], sizeof zero) == 0);
    }
    self = ar_content_key_new (dir, &error);
    assert (self && memcmp (ar_content_key_bytes (self), agreed[0], sizeof zero) == 0);
    ar_content_key_destroy (&self);
    assert (unlink (path) == 0);
    assert (rmdir (dir) == 0); // fails if a temp file was left behind

    if (saved_env) {
        setenv (AR_CONTENT_KEY_ENV, saved_env, 1);
        OPENSSL_cleanse (saved_env, strlen (saved_env));
        free (saved_env);
    }
    //  @end
}
