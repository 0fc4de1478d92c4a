-- Images stored before this migration hold their sampling parameters JSON-encoded twice (a JSON
-- string whose text is the object): decode them once, so every row holds the object itself.
UPDATE `images` SET `parameters` = json(json_extract(`parameters`, '$')) WHERE json_type(`parameters`) = 'text';
