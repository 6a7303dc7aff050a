# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab notebook: the dropout sweeps
#
# The [dropout chapter](../../dropout/) trains the reverse task on a fixed pool
# of 200 examples with every kind of dropout, on eleven seeds: two recorded
# experiments, `dropout-rates` and `dropout-methods`, of 110 runs of 600 steps
# in all. They are too long for the site's build, so they were run once and
# recorded (`nox -s experiments -- dropout-rates dropout-methods`); this
# notebook runs when the site is built and plots every seed of the records.
# The chapter checks the claims on every seed; the held-out seeds are the last
# three.

# %%
import matplotlib.pyplot as plt
from matplotlib_inline.backend_inline import set_matplotlib_formats

from lab.records import load_record

set_matplotlib_formats("svg")
rates = load_record("dropout-rates")
methods = load_record("dropout-methods")
print(rates.describe())
print(methods.describe())

# %% [markdown]
# Held-out token accuracy against the rate of dropout on $e + p$, one line per
# seed (dashed: held-out seeds):

# %%
fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
for seed in rates.seeds:
    rows = rates.rows(seed)
    style = "--" if seed in rates.held_out else "-"
    ax.plot([r["rate"] for r in rows], [r["held_out"] for r in rows], style, marker="o")
ax.set(xlabel="rate of dropout on e + p", ylabel="held-out token accuracy")
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# Held-out token accuracy of every run at rate 0.1, by kind of dropout, against
# no dropout on the same seed (the grey line joins each seed's baseline):

# %%
names = {
    "sum": "on e + p",
    "token": "on e only",
    "word": "word",
    "embedding": "embedding",
    "model": "everywhere",
}
fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
for seed in methods.seeds:
    rows = {(r["method"], r["rate"]): r for r in methods.rows(seed)}
    baseline = rows["sum", 0.0]["held_out"]
    for x, method in enumerate(names):
        run = rows[method, 0.1]["held_out"]
        ax.plot([x - 0.2, x + 0.2], [baseline, run], color="0.75")
        ax.plot(x + 0.2, run, "o", color="tab:blue", markersize=4)
        ax.plot(x - 0.2, baseline, "o", color="0.45", markersize=4)
ax.set_xticks(range(len(names)), [f"{name}\n0.1" for name in names.values()])
ax.set_ylabel("held-out token accuracy")
ax.set_title("grey: no dropout, blue: with dropout (each seed)", fontsize=10)
ax.grid(axis="y", alpha=0.3)
plt.show()
