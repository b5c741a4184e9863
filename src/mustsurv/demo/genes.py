"""Real HGNC gene symbols for the demo study's six functional families.

The families are those of MCAT / SurvPath / MUST (``signatures.csv`` layout). The lists are short
subsets of the real families (a few dozen genes each, overlaps kept as in the real file) so the demo
stays CPU-sized; a real study points ``gene_families`` at the full MCAT file.
"""

from __future__ import annotations

FAMILIES: dict[str, list[str]] = {
    "Tumor Suppressor Genes": [
        "AMER1", "APC", "ARID1A", "ATM", "ATR", "BAP1", "BRCA1", "BRCA2", "CDH1", "CDKN1A", "CDKN1B",
        "CDKN2A", "CHEK2", "CREBBP", "EP300", "FAT1", "FBXW7", "KDM6A", "KEAP1", "MLH1", "MSH2", "MSH6",
        "NF1", "NF2", "NOTCH1", "PMS2", "PTCH1", "PTEN", "RB1", "RUNX1", "SETD2", "SMAD4", "SMARCA4",
        "SMARCB1", "STK11", "TP53", "TSC1", "TSC2", "VHL", "WT1",
    ],
    "Oncogenes": [
        "ABI1", "ABL1", "AKT1", "ALK", "BCL2", "BCL6", "BRAF", "CCND1", "CDK4", "CDK6", "CTNNB1", "E2F3",
        "EGFR", "ERBB2", "FGFR1", "FGFR2", "FGFR3", "HRAS", "IDH1", "IDH2", "JAK2", "KIT", "KRAS", "MDM2",
        "MET", "MYC", "MYCN", "NFE2L2", "NRAS", "PDGFRA", "PIK3CA", "RET", "ROS1", "SOX2", "TERT", "YAP1",
    ],
    "Protein Kinases": [
        "AAK1", "AATK", "ABL1", "ABL2", "AKT1", "AKT2", "AKT3", "ALK", "ATM", "ATR", "AURKA", "AURKB",
        "BRAF", "BTK", "CDK1", "CDK2", "CDK4", "CDK6", "CHEK1", "CHEK2", "CSNK1A1", "EGFR", "EPHA2",
        "ERBB2", "ERBB3", "FGFR1", "FGFR2", "FGFR3", "FLT3", "GSK3B", "JAK1", "JAK2", "KIT", "MAP2K1",
        "MAP2K2", "MAPK1", "MAPK3", "MET", "MTOR", "PDGFRB", "PLK1", "PRKCA", "RAF1", "SRC", "STK11",
        "SYK", "TGFBR1", "TGFBR2", "WEE1",
    ],
    "Cell Differentiation Markers": [
        "ABCB1", "ABCG2", "ACE", "ALCAM", "CD14", "CD19", "CD274", "CD33", "CD34", "CD38", "CD3E", "CD4",
        "CD40", "CD44", "CD68", "CD79A", "CD8A", "CDH1", "CDH2", "ENG", "EPCAM", "FOXP3", "GATA3",
        "ITGAM", "ITGAX", "KRT14", "KRT20", "KRT5", "KRT7", "MKI67", "MS4A1", "NCAM1", "PDCD1", "PECAM1",
        "PTPRC", "THY1", "UPK1B", "UPK2", "VIM",
    ],
    "Transcription Factors": [
        "AATF", "ABT1", "AFF1", "AFF3", "AFF4", "ATF1", "ATF2", "ATF3", "ATF4", "CEBPA", "CEBPB", "E2F1",
        "E2F3", "EGR1", "ELK1", "ETS1", "FOS", "FOXA1", "FOXM1", "FOXO1", "FOXO3", "GATA2", "GATA3",
        "HIF1A", "HNF1A", "JUN", "KLF4", "KLF5", "MYB", "MYC", "NFKB1", "NKX2-1", "PAX5", "PAX8",
        "POU5F1", "PPARG", "RELA", "RUNX1", "SNAI1", "SNAI2", "SOX2", "SOX9", "SP1", "STAT1", "STAT3",
        "STAT5A", "TCF7", "TP63", "TWIST1", "ZEB1", "ZEB2",
    ],
    "Cytokines and Growth Factors": [
        "ADA2", "ADIPOQ", "ADM", "ADM2", "AGRP", "AGT", "AREG", "BMP2", "BMP4", "CCL2", "CCL5", "CSF1",
        "CSF2", "CXCL10", "CXCL12", "CXCL8", "CXCL9", "EGF", "EREG", "FGF2", "GDF15", "HGF", "IFNG",
        "IGF1", "IGF2", "IL10", "IL12A", "IL17A", "IL1A", "IL1B", "IL2", "IL4", "IL6", "KITLG", "LIF",
        "NRG1", "OSM", "PDGFA", "PDGFB", "TGFA", "TGFB1", "TGFB2", "TNF", "VEGFA", "VEGFC",
    ],
}

# Genes measured by the demo's RNA/CNV platforms that belong to no family (real matrices have ~20k such
# genes); they exercise the "gene not in any family" path of the omics readers.
UNASSIGNED: list[str] = [
    "ACTB", "GAPDH", "B2M", "HPRT1", "TBP", "RPLP0", "PGK1", "PPIA", "GUSB", "HMBS", "SDHA", "UBC",
    "YWHAZ", "TFRC", "ALB", "LDHA",
]


def all_family_genes() -> list[str]:
    """Sorted union of the six families' genes.

    Returns:
        The gene symbols of :data:`FAMILIES`, each once, sorted.
    """
    return sorted({g for genes in FAMILIES.values() for g in genes})
