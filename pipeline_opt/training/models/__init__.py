"""Example model factories for ``pipeline-opt memory-plan --model package.module:factory`` and the training job.

Each module has a ``build(**args)`` factory returning an ``nn.Module`` with ``loss(batch)`` and an ``INPUTS``
batch spec (``name=dtype[batch,...]``) a user can copy: ``gpt`` (the anchor's decoder), ``mlp`` (numeric table
rows), ``resnet`` (a small convolutional classifier with batch norm), ``bert`` (an encoder with dropout, optionally
with expert-choice mixture-of-experts feed-forward layers).
"""
