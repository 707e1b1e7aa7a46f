/* The onerec command-line tool: one file per subcommand, each `int cmd_X(int argc, char **argv)`
 * returning the process exit status. Results go to stdout (JSON with --json); progress and
 * errors to stderr. */
#ifndef ONEREC_CLI_H
#define ONEREC_CLI_H

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

/* Writes s as a JSON string literal (with quotes) to f. */
void cli_json_string(FILE *f, const char *s);

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
 * cli_catalog_codes'. Returns 0, or prints the error and returns 1. */
int cli_eval_run(onerec_context *ctx, const onerec_model *m, const onerec_catalog *cat,
                 const onerec_dataset *ds, const int32_t *codes, int split, int64_t max_users,
                 int beam, int progress, cli_eval_result *r);

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
