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
int cmd_train(int argc, char **argv);

/* Writes s as a JSON string literal (with quotes) to f. */
void cli_json_string(FILE *f, const char *s);

/* Prints "onerec: <what>: <status name>: <last error>" to stderr; returns exit status 1. */
int cli_fail(const char *what, onerec_status s);

#endif
