/* SPDX-License-Identifier: MIT */
/*
 * Hand-written SVG line charts with log-log axes, for mpklink-bench compare.
 * No library: the output is plain SVG 1.1 text.
 */
#ifndef MPK_BENCH_SVG_H
#define MPK_BENCH_SVG_H

#include <stddef.h>

struct svg_series {
	const char *name;  /* legend text */
	const char *color; /* any SVG colour, e.g. "#1f77b4" */
	size_t n;
	const double *x, *y; /* points; those with x <= 0 or y <= 0 are skipped */
};

struct svg_panel {
	const char *title;
	const char *xlabel, *ylabel; /* with their units */
	const struct svg_series *series;
	size_t nseries;
};

/*
 * A document with the panels side by side, each with log-log axes (decade
 * ticks, labelled 1, 10, 100, 1k, ... 1G), one <polyline> (and a marker
 * per point) per series, and one legend naming the first panel's series.
 * Returns a malloc'd NUL-terminated string (length in *len if len), or NULL
 * when out of memory.
 */
char *svg_loglog(const char *title, const struct svg_panel *panels, size_t npanels, size_t *len);

#endif
