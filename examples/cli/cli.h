/* The onerec command-line tool: one file per subcommand, each `int cmd_X(int argc, char **argv)`
 * returning the process exit status. Results go to stdout (JSON with --json); progress and
 * errors to stderr. */
#ifndef ONEREC_CLI_H
#define ONEREC_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "onerec/onerec.h"

int cmd_info(int argc, char **argv);
int cmd_features(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_align(int argc, char **argv);
int cmd_synth(int argc, char **argv); /* `onerec data synth` */
int cmd_recommend(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);

/* ---- options (cli_args.c): one table-driven parser for every command ----
 *
 * A command lists its options in a table and calls cli_parse once:
 *
 *   long long steps = 0;  double lr = 1e-3;  const char *out = "run";  int json = 0;
 *   const cli_opt opts[] = {CLI_INT("--steps", &steps, 1, CLI_INT_MAX),
 *                           CLI_REAL("--lr", &lr, 0.0, INFINITY, CLI_OPEN_LO),
 *                           CLI_STR("--out", &out), CLI_FLAG("--json", &json)};
 *   int rc = cli_parse("train", argc, argv, opts, CLI_COUNT(opts), usage, NULL, 0);
 *   if (rc != CLI_PARSED) return rc;
 *
 * argv[0] is the command's own word and is skipped. Every option but a flag takes the next
 * argument as its value, even one starting with '-' ("--max-train -1"); a later occurrence
 * overrides an earlier one; an option not given leaves its variable alone (its default).
 * Integers are base-10 strtoll with nothing after the digits, reals strtod with nothing after
 * the number and finite; both must then lie in the option's range. Otherwise a message such as
 * "onerec train: --steps: 'abc' is not an integer" or "... '0' is out of range 1..64" goes to
 * stderr and the status is 2. -h / --help prints usage to stdout (status 0); an unknown
 * option, a missing value or a stray argument prints a message and usage to stderr (status 2).
 * Arguments not starting with '-' fill the positional slots pos[0..n_pos) in order. Choices
 * among words (--split test|valid) are strings that the command checks after parsing; so are
 * conditions joining several options (k <= beam). */
typedef enum cli_kind { CLI_KIND_STR, CLI_KIND_INT, CLI_KIND_REAL, CLI_KIND_FLAG } cli_kind;

/* CLI_REAL's `open`: leave out the lower and/or upper bound, as in (0, 1] or [0, 1). */
enum { CLI_OPEN_LO = 1, CLI_OPEN_HI = 2 };

typedef struct cli_opt {
  const char *name; /* "--steps", "-k" */
  cli_kind kind;
  const char **str; /* the destination, by kind */
  long long *i;
  double *r;
  int *flag;            /* set to 1 when given */
  long long imin, imax; /* integers: accepted range, inclusive */
  double rmin, rmax;    /* reals: accepted range, inclusive unless `open` says otherwise */
  int open;
} cli_opt;

/* Bounds meaning "no limit": the whole long long range; -INFINITY / INFINITY for reals. */
#define CLI_INT_MIN (-0x7fffffffffffffffLL - 1)
#define CLI_INT_MAX 0x7fffffffffffffffLL
#define CLI_STR(n, p) {.name = (n), .kind = CLI_KIND_STR, .str = (p)}
#define CLI_FLAG(n, p) {.name = (n), .kind = CLI_KIND_FLAG, .flag = (p)}
#define CLI_INT(n, p, lo, hi) \
  {.name = (n), .kind = CLI_KIND_INT, .i = (p), .imin = (lo), .imax = (hi)}
#define CLI_REAL(n, p, lo, hi, op) \
  {.name = (n), .kind = CLI_KIND_REAL, .r = (p), .rmin = (lo), .rmax = (hi), .open = (op)}
#define CLI_COUNT(a) (sizeof(a) / sizeof *(a))

/* What cli_parse returns when the command should go on; any other value is the exit status
 * (0 after --help, 2 after a message). cmd names the command in messages ("data stats"). */
#define CLI_PARSED (-1)
int cli_parse(const char *cmd, int argc, char **argv, const cli_opt *opts, size_t n_opts,
              void (*usage)(FILE *), const char **pos, int n_pos);

/* SplitMix64: the CLI's one seeded generator (shuffles, synthetic data); advances
 * *s and returns the next 64 random bits. */
static inline uint64_t cli_splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Writes s as a JSON string literal (with quotes) to f. */
void cli_json_string(FILE *f, const char *s);

/* Creates folder dir and its missing parents (mkdir -p); 1 after a message if it cannot, or if
 * dir is not a writable folder. Commands that write into a folder call it before any long
 * work, so a bad --out fails at once instead of after training. */
int cli_mkdirs(const char *dir);

/* Small text files written atomically: cli_atomic_open opens path's sibling path.tmp (its
 * name into tmp, len bytes) for the caller to write; cli_atomic_commit closes it and renames
 * it over path, or removes it. Both print what failed; open returns NULL, commit 1. */
FILE *cli_atomic_open(const char *path, char *tmp, size_t len);
int cli_atomic_commit(FILE *f, const char *tmp, const char *path);

/* Prints "onerec: <what>: <status name>: <last error>" to stderr; returns exit status 1. */
int cli_fail(const char *what, onerec_status s);

/* ---- shared by eval and train (cmd_eval.c) ---- */

/* The folder or file onerec_dataset_load reads for --data DIR --dataset NAME (DIR itself, or
 * its amazon/ or ml-100k/ subfolder). */
const char *cli_data_path(const char *dir, const char *dataset, char *buf, size_t len);

/* The onerec_batch_opts length of the short-term (positive = 0) or positive-feedback pathway
 * of a model: its length, or -1 when the model leaves the pathway out. */
int32_t cli_batch_len(const onerec_model_config *c, int positive);

/* Semantic IDs by dense item index [items, levels] from the catalogue (items map by their
 * data set id); malloc'ed into *out. Prints the error and returns 1 if an item is missing. */
int cli_catalog_codes(const onerec_dataset *ds, const onerec_catalog *cat, int32_t **out);

/* 0 when a model configuration can be trained and evaluated with the catalogue (same levels
 * and codebook, items by SID); otherwise prints why (naming `what`) and returns 1. */
int cli_model_fits_catalog(const onerec_model_config *c, const onerec_catalog *cat,
                           const char *what);

typedef struct cli_eval_result {
  double recall5, ndcg5, recall10, ndcg10, seconds;
  int64_t users, total; /* users evaluated, users of the split */
} cli_eval_result;

/* Full-ranking metrics of constrained beam search on split (onerec_split) for the first
 * max_users users (0 = all), in batches; progress on stderr when `progress`. codes are
 * cli_catalog_codes'. models[0..n_models): one model, or an ensemble ranked by the mean of
 * their log-probabilities (same catalogue and inputs). With `ranks` (may be NULL), one line
 * per user evaluated, `user_id<TAB>target_id<TAB>rank` (0-based rank of the target in the top
 * 10, -1 if it is not there), after a header line. Returns 0, or prints the error and
 * returns 1. */
int cli_eval_run(onerec_context *ctx, const onerec_model *const *models, int n_models,
                 const onerec_catalog *cat, const onerec_dataset *ds, const int32_t *codes,
                 int split, int64_t max_users, int beam, int progress, FILE *ranks,
                 cli_eval_result *r);

/* DIR/run.json records what `onerec train` trained on (data folder, data set, catalogue; paths
 * made absolute), so `onerec eval --model DIR/model.h5` needs no more flags. write: 0 or 1
 * (message printed). read: fills the three buffers (len bytes each) from the run.json next to
 * model_path; 0 on success, 1 when there is none or it is unreadable (nothing printed). */
int cli_run_info_write(const char *dir, const char *data, const char *dataset,
                       const char *catalog);
int cli_run_info_read(const char *model_path, char *data, char *dataset, char *catalog,
                      size_t len);

/* Writes the metrics as the start of a JSON object (no closing brace). */
void cli_eval_print(FILE *f, const cli_eval_result *r, const char *split);

#endif
