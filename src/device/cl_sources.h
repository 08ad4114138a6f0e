/* The table of embedded kernel sources, generated from the .cl files of cl/ at build time. */
#ifndef CLVAE_CL_SOURCES_H
#define CLVAE_CL_SOURCES_H

struct clvae_cl_source {
  const char *name;          /* file name without ".cl" */
  const char *text;
  int length;
};

extern const struct clvae_cl_source clvae_cl_sources[];

#endif
