"""Numbers the papers report, on their own models: never measured here, always shown as "reported".

* :data:`REPORTED`: published GLUE scores of BERT and of small models, for context;
* :data:`REPORTED_METHODS`: what the compared compression methods' papers state;
* :data:`KWON_REPORTED`: Kwon et al. 2022's headline result and criterion;
* :data:`PAPER_KEPT_PERCENT`: the share of parameters OBCE and PBCE keep, as their papers state.
"""
from __future__ import annotations

__all__ = ["KWON_REPORTED", "PAPER_KEPT_PERCENT", "REPORTED", "REPORTED_METHODS"]

#: Published GLUE numbers (x100), labelled with their source and split, for context only; the book
#: prints them as "reported", never mixed with measured ones. BERT: the paper's Table 1; TinyBERT-4:
#: only the values a second listing corroborated (checked 2026-11); DistilBERT and MiniLM: the
#: authors' model cards on the Hugging Face hub (checked 2026-11). A missing key means "not
#: transcribed", and other methods' tables are left to the papers. Metrics as in the sources (BERT:
#: MRPC/QQP F1, STS-B Spearman, CoLA Matthews corr., MNLI matched accuracy, others accuracy; the
#: cards do not say, see ``note``).
REPORTED = [
    dict(model="BERT-Base", source="Devlin et al. 2019, Table 1", split="test", params_m=110,
         cola=52.1, sst2=93.5, mrpc=88.9, stsb=85.8, qqp=71.2, mnli=84.6, qnli=90.5, rte=66.4),
    dict(model="BERT-Large", source="Devlin et al. 2019, Table 1", split="test", params_m=340,
         cola=60.5, sst2=94.9, mrpc=89.3, stsb=86.5, qqp=72.1, mnli=86.7, qnli=92.7, rte=70.1),
    dict(model="TinyBERT-4", source="Jiao et al. 2020, Table 1", split="test", params_m=14.5,
         cola=43.3, mrpc=86.4, mnli=82.5),
    dict(model="DistilBERT (base, cased)", source="model card distilbert/distilbert-base-cased", split="test",
         params_m=65, cola=47.2, sst2=90.4, mrpc=85.6, stsb=85.5, qqp=87.8, mnli=81.5, qnli=88.2, rte=60.6,
         note="the card states no metric per task (QQP 87.8 is not an F1 of the test server)"),
    dict(model="MiniLM-L12xH384", source="model card microsoft/MiniLM-L12-H384-uncased", split="dev",
         params_m=33, cola=58.5, sst2=93.0, mrpc=89.5, qqp=91.3, mnli=85.7, qnli=91.5, rte=73.3,
         note="the card states no metric per task (MRPC/QQP likely accuracy)"),
    dict(model="BERT-of-Theseus (6 layers, MNLI-pretrained)",
         source="README of JetRunner/BERT-of-Theseus; model card canwenxu/BERT-of-Theseus-MNLI", split="dev",
         params_m=66, sst2=91.8, mrpc=87.5, stsb=87.8, qqp=88.8, mnli=82.1, qnli=88.8, rte=70.1,
         note="the authors' general-purpose model, fine-tuned per task; the model card gives the split "
              "(\"GLUE (dev set)\") but not the metric of each task"),
]


#: What the methods' papers report, on their models (never measured here). Only what the sources'
#: abstracts state is transcribed; the papers' tables give the per-task numbers.
REPORTED_METHODS = [
    dict(method="Adapting by pruning (learned masks)", source="Gao et al. 2021, abstract", model="BERT-Base",
         reported="up to 50% of the weights pruned with performance similar to the fine-tuned full model"),
    dict(method="Removing FFN sub-layers", source="Sridhar and Sarah 2020, abstract", model="BERT-Base",
         reported="fewer intermediate (FFN) layers cost minimal fine-tuning accuracy and cut parameters and "
                  "training time"),
    dict(method="KroneckerBERT", source="Tahaei et al. 2022, abstract", model="BERT-Base",
         reported="at a compression factor of 19 (5% of BERT-Base's size) outperforms state-of-the-art compression "
                  "methods on GLUE"),
    dict(method="EELBERT", source="Cohn et al. 2023, abstract", model="BERT variants, BERT-tiny",
         reported="minimal GLUE regression against BERT; the smallest model (UNO-EELBERT, 1.2 MB) within 4% of "
                  "BERT-tiny's GLUE score at 15 times smaller"),
]


#: Kwon et al. 2022 on BERT-base (heads and FFN neurons, mask search + rearrangement + tuning), as
#: reported in their abstract, not measured here; and their criterion: keep 99% of the accuracy
KWON_REPORTED = {"flops_reduction": 2.0, "accuracy_loss": 1, "keep_percent": 99}


#: The fraction of parameters kept that the papers report (percent; reported, not measured here):
#: OBCE at its strongest level (Balderas et al. 2023) and its follow-up PBCE (Balderas et al. 2025).
PAPER_KEPT_PERCENT = {"OBCE": {"bert-base-uncased": 58.47, "bert-large-uncased": 52.3},
                      "PBCE": {"bert-base-uncased": 47, "bert-large-uncased": 42}}


