/* The whole VAE, forward and backward, in double precision on the host, as loops over the
 * same layer list the device runs: the reference for the gradient check (central
 * differences) and for one device training step. */
#ifndef CLVAE_VAE_REF_H
#define CLVAE_VAE_REF_H

#include "clvae/model.h"

/* Loss = (1/B)·Σ_b (recon_b + β·kl_b) on the B images x (B, D) in [0, 1] (with their
 * classes `labels` (B) for a conditional model, else NULL), with ε drawn for (seed,
 * noise_step) as the device does. p has net->total values. grad (same layout), recon (B),
 * kl (B) may be NULL. *min_preact receives the smallest |pre-activation| of any ReLU layer
 * (to keep finite differences off the kink). Returns NAN if out of memory. */
double ref_vae_loss(const clvae_net *net, const double *p, const float *x, const int *labels, int B,
                    uint64_t noise_step, double *grad, double *recon, double *kl, double *min_preact);

#endif
