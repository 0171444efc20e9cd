// placeholder so the part's library exists; removed when the part has sources
