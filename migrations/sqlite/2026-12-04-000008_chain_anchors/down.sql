DROP TABLE chain_anchors;
