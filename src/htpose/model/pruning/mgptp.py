"""MGPTP: the Mask-Guided Pose Token Pruner, the token level of HTP.

Density-peak clustering with k nearest neighbours (DPC-kNN) over the frame tokens that TCEP
kept (the mask guides it: pruned frames are neither centres nor members). Tokens are pooled
over joints to one descriptor per frame, ``d_ij = |x_i - x_j| / sqrt(C)``; density
``rho_i = exp(-mean of d_ij^2 over the k nearest, itself included)``; ``delta_i`` the distance
to the nearest denser token (the densest gets the largest distance); the ``n_out`` tokens of
highest ``rho * delta`` are centres. Unlike HoT, which keeps the centres and drops the rest,
every token is merged into its nearest centre (the mean of the cluster, per joint), so no
kept frame's information is thrown away.
"""

from __future__ import annotations

import torch


def dpc_knn_merge(
    tokens: torch.Tensor, n_out: int, k: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge ``(N, n, J, C)`` frame tokens into ``(N, n_out, J, C)`` cluster means.

    Returns the merged tokens (in the temporal order of their centres) and ``assign``
    ``(N, n)``, the output slot of every input token.
    """
    n_batch, n, _, c = tokens.shape
    if n_out >= n:
        return tokens, torch.arange(n, device=tokens.device).expand(n_batch, n)
    with torch.no_grad():
        feats = tokens.mean(dim=2).float()  # (N, n, C)
        # Exact differences, not the matmul shortcut: no batch-dependent rounding in choices.
        dist = torch.cdist(feats, feats, compute_mode="donot_use_mm_for_euclid_dist") / c**0.5
        knn = dist.topk(min(k, n), dim=-1, largest=False).values
        # A tiny index-ordered term breaks density ties deterministically.
        tie = torch.arange(n, device=tokens.device, dtype=feats.dtype) * 1e-6 / n
        rho = torch.exp(-(knn**2).mean(dim=-1)) + tie
        denser = rho[:, None, :] > rho[:, :, None]  # [b, i, j]: j is denser than i
        far = dist.flatten(1).amax(dim=1)[:, None, None].expand_as(dist)
        delta = torch.where(denser, dist, far).amin(dim=-1)
        centres = (rho * delta).topk(n_out, dim=-1).indices.sort(dim=-1).values  # (N, n_out)
        to_centre = dist.gather(2, centres[:, None, :].expand(-1, n, -1))  # (N, n, n_out)
        assign = to_centre.argmin(dim=-1)
        # A centre always belongs to its own cluster (identical tokens would otherwise tie).
        assign.scatter_(1, centres, torch.arange(n_out, device=tokens.device).expand(n_batch, -1))
    weights = torch.nn.functional.one_hot(assign, n_out).to(tokens.dtype)  # (N, n, n_out)
    weights = weights / weights.sum(dim=1, keepdim=True)
    merged = torch.einsum("bio,bijc->bojc", weights, tokens)
    return merged, assign
