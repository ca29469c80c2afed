/* Pieces shared by the flamegraph writer's files. */
#ifndef PYSPY_FORMATS_FLAMEGRAPH_PARTS_H
#define PYSPY_FORMATS_FLAMEGRAPH_PARTS_H

extern const char pyspy_flamegraph_css[];
extern const char pyspy_flamegraph_js[];

#endif
