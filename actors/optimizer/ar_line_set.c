/*  ar_line_set: see the header. Open addressing over (hash, length) pairs, grown at half full. */
#include "ar_line_set.h"
#include "ar_text_hash.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t hash;
    uint64_t len; // 0: an empty slot (empty lines are never added)
} s_slot_t;

struct ar_line_set {
    s_slot_t *slots;
    size_t mask, count;
};

ar_line_set_t *ar_line_set_new (void)
{
    ar_line_set_t *self = calloc (1, sizeof *self);
    if (self) {
        self->slots = calloc (256, sizeof (s_slot_t));
        self->mask = 255;
    }
    if (self && !self->slots) {
        free (self);
        return NULL;
    }
    return self;
}

void ar_line_set_destroy (ar_line_set_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free ((*self_p)->slots);
    free (*self_p);
    *self_p = NULL;
}

size_t ar_line_set_trim (const char *line, size_t len, size_t *start)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n'))
        i++;
    while (len > i && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r' ||
                       line[len - 1] == '\n'))
        len--;
    *start = i;
    return len - i;
}

static s_slot_t *s_find (const ar_line_set_t *self, uint64_t hash, size_t len)
{
    for (size_t i = hash & self->mask;; i = (i + 1) & self->mask) {
        s_slot_t *slot = &self->slots[i];
        if (!slot->len || (slot->hash == hash && slot->len == len))
            return slot;
    }
}

static int s_grow (ar_line_set_t *self)
{
    size_t size = (self->mask + 1) * 2;
    s_slot_t *old = self->slots;
    size_t old_size = self->mask + 1;
    self->slots = calloc (size, sizeof (s_slot_t));
    if (!self->slots) {
        self->slots = old;
        return -1;
    }
    self->mask = size - 1;
    for (size_t i = 0; i < old_size; i++)
        if (old[i].len)
            *s_find (self, old[i].hash, (size_t)old[i].len) = old[i];
    free (old);
    return 0;
}

//  The hash of a trimmed line with each inner run of spaces and tabs read as one space:
//  context_compression squeezes such runs in some outputs and not in others.
static uint64_t s_hash (const char *line, size_t len, size_t *norm_len)
{
    static _Thread_local char stack[1024];
    char *buf = len <= sizeof stack ? stack : malloc (len);
    if (!buf) {
        *norm_len = len;
        return ar_text_hash (line, len); // exact, then: a miss at worst
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        bool blank = line[i] == ' ' || line[i] == '\t';
        if (blank && n && buf[n - 1] == ' ')
            continue;
        buf[n++] = blank ? ' ' : line[i];
    }
    uint64_t hash = ar_text_hash (buf, n);
    if (buf != stack)
        free (buf);
    *norm_len = n;
    return hash;
}

//  Add one trimmed, non-empty line.
static int s_add (ar_line_set_t *self, const char *line, size_t len)
{
    if ((self->count + 1) * 2 > self->mask + 1 && s_grow (self) != 0)
        return -1;
    uint64_t hash = s_hash (line, len, &len);
    s_slot_t *slot = s_find (self, hash, len);
    if (!slot->len) {
        *slot = (s_slot_t){hash, len};
        self->count++;
    }
    return 0;
}

//  The code after an `nl -ba` / `cat -n` number ("   388\t    code"): its offset, or 0.
static size_t s_numbered (const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && line[i] == ' ')
        i++;
    size_t digits = i;
    while (i < len && line[i] >= '0' && line[i] <= '9')
        i++;
    return i > digits && i < len && line[i] == '\t' ? i + 1 : 0;
}

int ar_line_set_add_text (ar_line_set_t *self, const char *text, size_t len)
{
    for (size_t i = 0; i < len;) {
        const char *nl = memchr (text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t start, trimmed = ar_line_set_trim (text + i, end - i, &start);
        if (trimmed && s_add (self, text + i + start, trimmed) != 0)
            return -1;
        size_t code = s_numbered (text + i, end - i);
        if (code) {
            trimmed = ar_line_set_trim (text + i + code, end - i - code, &start);
            if (trimmed && s_add (self, text + i + code + start, trimmed) != 0)
                return -1;
        }
        i = end + 1;
    }
    return 0;
}

bool ar_line_set_has (const ar_line_set_t *self, const char *line, size_t len)
{
    size_t start, trimmed = ar_line_set_trim (line, len, &start);
    if (!trimmed)
        return false;
    uint64_t hash = s_hash (line + start, trimmed, &trimmed);
    return s_find (self, hash, trimmed)->len != 0;
}

size_t ar_line_set_size (const ar_line_set_t *self)
{
    return self->count;
}

void ar_line_set_test (bool verbose)
{
    ar_line_set_t *set = ar_line_set_new ();
    assert (set);
    const char *output = "   388\t    def prepare_content_length(self, body):\n"
                         "   389\t        self.headers['Content-Length'] = '0'\r\n"
                         "\n"
                         "requests/models.py:389: self.headers\n"
                         "   \t  \n";
    assert (ar_line_set_add_text (set, output, strlen (output)) == 0);
    //  Two numbered lines twice each, the grep line once; blank lines never.
    assert (ar_line_set_size (set) == 5);
    //  A quote of the code matches with any indentation; the numbered line only with its number.
    assert (ar_line_set_has (set, "def prepare_content_length(self, body):", 39));
    assert (ar_line_set_has (set, "\t  self.headers['Content-Length'] = '0'  ", 41));
    assert (ar_line_set_has (set, "   388\t    def prepare_content_length(self, body):", 50));
    assert (!ar_line_set_has (set, "   390\t    def prepare_content_length(self, body):", 50));
    assert (!ar_line_set_has (set, "def prepare_content_length(self, body)", 38));
    assert (ar_line_set_has (set, "requests/models.py:389: self.headers", 36));
    assert (!ar_line_set_has (set, "self.headers", 12)); // only whole lines
    //  Inner runs of blanks compare as one space (one copy squeezed, the other not).
    const char *squeezed = "requests/models.py:389:   self.headers";
    const char *tabbed = "388 def prepare_content_length(self,\t body):";
    assert (ar_line_set_has (set, squeezed, strlen (squeezed)));
    assert (ar_line_set_has (set, tabbed, strlen (tabbed)));
    assert (!ar_line_set_has (set, "", 0) && !ar_line_set_has (set, " \t", 2));
    //  A text without a final newline, and "388" alone is no numbered line.
    assert (ar_line_set_add_text (set, "388\nlast line", 13) == 0);
    assert (ar_line_set_has (set, "last line", 9) && ar_line_set_has (set, "388", 3));
    //  Growth keeps every line: 20,000 distinct lines, each found, none of another 20,000.
    char line[32];
    for (int i = 0; i < 20000; i++) {
        int n = snprintf (line, sizeof line, "line number %d here", i);
        assert (ar_line_set_add_text (set, line, (size_t)n) == 0);
    }
    for (int i = 0; i < 20000; i++) {
        int n = snprintf (line, sizeof line, "line number %d here", i);
        assert (ar_line_set_has (set, line, (size_t)n));
        n = snprintf (line, sizeof line, "line number %d there", i);
        assert (!ar_line_set_has (set, line, (size_t)n));
    }
    assert (ar_line_set_size (set) == 20007);
    if (verbose)
        printf ("ar_line_set: %zu lines in %zu slots\n", ar_line_set_size (set), set->mask + 1);
    ar_line_set_destroy (&set);
    ar_line_set_destroy (&set);
}
