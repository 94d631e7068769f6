"""Custom Rasa NLU components: thin adapters over :mod:`bot.text`.

Pipeline order (see ``config.yml``): ``ChineseTextNormalizer`` first, Rasa's tokenizer, featurizers and
classifiers next, then ``RuleEntityExtractorComponent`` and finally ``OriginalTextRestorer``.
"""
