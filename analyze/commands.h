/* The pyspy-analyze subcommands. Each takes a parsed, validated config
 * and returns the process exit status (0 ok, 1 failure after printing
 * one error line). */
#ifndef PYSPY_ANALYZE_COMMANDS_H
#define PYSPY_ANALYZE_COMMANDS_H
#include <pyspy.h>

int pyspy_cmd_dump(const pyspy_config *cfg);
int pyspy_cmd_record(const pyspy_config *cfg);
int pyspy_cmd_top(const pyspy_config *cfg);

#endif
